// Pure builders for X.509 structures (RFC 5280): names, extensions, TBSCertificate, and the
// final certificate from a TBS plus a signature. Signing itself happens outside the core
// (src/keys/certify.ts) because signers may be asynchronous (HSM, KMS).
import {
  seq,
  setOf,
  oid,
  integer,
  bool,
  octetString,
  bitString,
  utf8String,
  printableString,
  ia5String,
  explicit,
  ctx,
  x509Time,
  tlv,
} from './der.ts';
import { concat, utf8 } from './bytes.ts';
import { OID } from './oids.ts';
import { sha256 } from './crypto.ts';

export interface NameAttribute {
  oid: string;
  value: string;
}

/** An X.501 Name; an empty list encodes the empty name Fulcio uses for leaf certificates. */
export function encodeName(attrs: readonly NameAttribute[]): Uint8Array {
  return seq(
    ...attrs.map((a) =>
      setOf(
        seq(
          oid(a.oid),
          /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(a.value) && a.oid !== OID.commonName ? printableString(a.value) : utf8String(a.value),
        ),
      ),
    ),
  );
}

/** Convenience: O=<org>, CN=<cn>. */
export function simpleName(organization: string | undefined, commonName: string | undefined): Uint8Array {
  const attrs: NameAttribute[] = [];
  if (organization) attrs.push({ oid: OID.organizationName, value: organization });
  if (commonName) attrs.push({ oid: OID.commonName, value: commonName });
  return encodeName(attrs);
}

export interface ExtensionSpec {
  oid: string;
  critical?: boolean;
  /** The DER (or raw) extnValue contents, before OCTET STRING wrapping. */
  value: Uint8Array;
}

export function encodeExtension(e: ExtensionSpec): Uint8Array {
  return e.critical ? seq(oid(e.oid), bool(true), octetString(e.value)) : seq(oid(e.oid), octetString(e.value));
}

export const ext = {
  basicConstraints(ca: boolean, pathLen?: number): ExtensionSpec {
    const parts: Uint8Array[] = [];
    if (ca) parts.push(bool(true));
    if (ca && pathLen !== undefined) parts.push(integer(pathLen));
    return { oid: OID.basicConstraints, critical: true, value: seq(...parts) };
  },
  keyUsage(usages: readonly ('digitalSignature' | 'keyCertSign' | 'cRLSign')[]): ExtensionSpec {
    const bitOf = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;
    let v = 0;
    let highest = 0;
    for (const u of usages) {
      v |= 0x80 >> bitOf[u];
      highest = Math.max(highest, bitOf[u]);
    }
    // DER: unused trailing bits are counted and must be zero.
    const unused = 7 - highest;
    return { oid: OID.keyUsage, critical: true, value: bitString(Uint8Array.of(v), unused) };
  },
  extKeyUsage(oids: readonly string[], critical = false): ExtensionSpec {
    return { oid: OID.extKeyUsage, critical, value: seq(...oids.map((o) => oid(o))) };
  },
  subjectKeyId(spki: Uint8Array): ExtensionSpec {
    return { oid: OID.subjectKeyIdentifier, value: octetString(keyIdentifier(spki)) };
  },
  authorityKeyId(keyId: Uint8Array): ExtensionSpec {
    return { oid: OID.authorityKeyIdentifier, value: seq(ctx(0, keyId, false)) };
  },
  /** A SAN extension with one or more names. */
  subjectAltName(
    names: readonly ({ type: 'email' | 'uri' | 'dns'; value: string } | { type: 'otherName'; typeId: string; value: string })[],
    critical: boolean,
  ): ExtensionSpec {
    const enc = names.map((n) => {
      switch (n.type) {
        case 'email':
          return tlv(0x81, utf8(n.value));
        case 'dns':
          return tlv(0x82, utf8(n.value));
        case 'uri':
          return tlv(0x86, utf8(n.value));
        case 'otherName':
          return ctx(0, concat(oid(n.typeId), explicit(0, utf8String(n.value))));
      }
    });
    return { oid: OID.subjectAltName, critical, value: seq(...enc) };
  },
  /** An extension whose value is a DER UTF8String (Fulcio 1.8 and later). */
  utf8(oidStr: string, value: string): ExtensionSpec {
    return { oid: oidStr, value: utf8String(value) };
  },
  /** An extension whose value is the raw string bytes (Fulcio 1.1-1.6). */
  raw(oidStr: string, value: string): ExtensionSpec {
    return { oid: oidStr, value: utf8(value) };
  },
  ia5(oidStr: string, value: string): ExtensionSpec {
    return { oid: oidStr, value: ia5String(value) };
  },
};

/**
 * Key identifier: the leftmost 160 bits of SHA-256 over the subjectPublicKey BIT STRING
 * contents (RFC 7093 method 1), computed over the whole SPKI for simplicity and stability.
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  return sha256(spki).subarray(0, 20);
}

export interface TbsTemplate {
  serial: Uint8Array;
  /** DER AlgorithmIdentifier of the issuer's signature algorithm. */
  signatureAlgorithm: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: readonly ExtensionSpec[];
}

/** DER TBSCertificate, version 3. */
export function encodeTbs(t: TbsTemplate): Uint8Array {
  return seq(
    explicit(0, integer(2)),
    integer(t.serial),
    t.signatureAlgorithm,
    t.issuer,
    seq(x509Time(t.notBefore), x509Time(t.notAfter)),
    t.subject,
    t.spki,
    ...(t.extensions.length ? [explicit(3, seq(...t.extensions.map(encodeExtension)))] : []),
  );
}

/** The final certificate: SEQUENCE { tbs, algorithm, BIT STRING signature }. */
export function assembleCertificate(tbs: Uint8Array, signatureAlgorithm: Uint8Array, signature: Uint8Array): Uint8Array {
  return seq(tbs, signatureAlgorithm, bitString(signature));
}

/** A random positive serial of `bytes` bytes (default 20 = 160 bits, top bit clear). */
export function randomSerial(bytes = 20): Uint8Array {
  const s = new Uint8Array(bytes);
  crypto.getRandomValues(s);
  s[0] = (s[0]! & 0x7f) | 0x01; // positive, and never a leading zero byte
  return s;
}
