// X.509 certificate parsing (RFC 5280) over our DER reader: enough to check chains, read the
// Fulcio identity extensions and the SAN forms Sigstore uses (email, URI, OtherName 1.7).
// Node's X509Certificate cannot read arbitrary extensions, so we parse ourselves.
import { WaxsealError } from './errors.ts';
import {
  parseDer,
  expectTag,
  child,
  readOid,
  readIntegerBytes,
  readSmallInt,
  readTime,
  readBitStringBytes,
  readBoolean,
  readOctetString,
  readString,
  isContext,
  TAG,
  type DerNode,
} from './der.ts';
import { fromUtf8, bytesEqual, toHex } from './bytes.ts';
import { OID, FULCIO_OID, FULCIO_RAW_STRING_OIDS, type FulcioExtensionName } from './oids.ts';
import { publicKeyFromSpki, verifySignature, type HashName, type PublicKeyInfo } from './crypto.ts';
import { decodePemAll } from './pem.ts';

export interface Extension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

export type SubjectAltName =
  | { type: 'email'; value: string }
  | { type: 'uri'; value: string }
  | { type: 'dns'; value: string }
  | { type: 'otherName'; typeId: string; value: string };

export interface Certificate {
  /** The whole certificate, DER. */
  der: Uint8Array;
  tbs: Uint8Array;
  version: number;
  serial: Uint8Array;
  issuerRaw: Uint8Array;
  subjectRaw: Uint8Array;
  /** Attribute values of the subject, by OID (first value of each). */
  subject: Record<string, string>;
  issuer: Record<string, string>;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: Extension[];
  signatureAlgorithm: string;
  signature: Uint8Array;
}

function fail(message: string): never {
  throw new WaxsealError('ERR_DER_PARSE', `certificate: ${message}`);
}

function parseName(n: DerNode): Record<string, string> {
  expectTag(n, TAG.SEQUENCE, 'Name');
  const out: Record<string, string> = {};
  for (const rdn of n.children) {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    for (const atv of rdn.children) {
      const type = readOid(child(atv, 0, 'attribute type'));
      if (out[type] === undefined) {
        try {
          out[type] = readString(child(atv, 1, 'attribute value'));
        } catch {
          out[type] = toHex(child(atv, 1, 'attribute value').value);
        }
      }
    }
  }
  return out;
}

/** Parses one DER certificate. Throws ERR_DER_PARSE on anything malformed. */
export function parseCertificate(der: Uint8Array): Certificate {
  const root = parseDer(der);
  expectTag(root, TAG.SEQUENCE, 'Certificate');
  if (root.children.length !== 3) fail('expected tbsCertificate, signatureAlgorithm, signature');
  const tbs = expectTag(root.children[0], TAG.SEQUENCE, 'tbsCertificate');
  const sigAlg = expectTag(root.children[1], TAG.SEQUENCE, 'signatureAlgorithm');
  const signature = readBitStringBytes(root.children[2], 'signature');

  let i = 0;
  let version = 1;
  if (isContext(tbs.children[0], 0)) {
    // [0] EXPLICIT Version: exactly one INTEGER, v1-v3 (a longer INTEGER is not read as its first byte).
    if (tbs.children[0]!.children.length !== 1) fail('version must be one INTEGER');
    const v = readSmallInt(child(tbs.children[0]!, 0, 'version'), 'version');
    if (v < 0 || v > 2) fail(`unsupported version ${v + 1}`);
    version = v + 1;
    i++;
  }
  const serial = readIntegerBytes(tbs.children[i++], 'serialNumber');
  const innerAlg = expectTag(tbs.children[i++], TAG.SEQUENCE, 'signature');
  const issuerNode = expectTag(tbs.children[i++], TAG.SEQUENCE, 'issuer');
  const validity = expectTag(tbs.children[i++], TAG.SEQUENCE, 'validity');
  const subjectNode = expectTag(tbs.children[i++], TAG.SEQUENCE, 'subject');
  const spkiNode = expectTag(tbs.children[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions: Extension[] = [];
  // Across every [3] field: a second Extensions list must not repeat (or hide) an extension.
  const seen = new Set<string>();
  for (; i < tbs.children.length; i++) {
    const c = tbs.children[i]!;
    if (isContext(c, 3)) {
      const list = expectTag(child(c, 0, 'extensions'), TAG.SEQUENCE, 'Extensions');
      for (const ext of list.children) {
        expectTag(ext, TAG.SEQUENCE, 'Extension');
        const oid = readOid(child(ext, 0, 'extnID'));
        if (seen.has(oid)) fail(`duplicate extension ${oid}`);
        seen.add(oid);
        let critical = false;
        let vi = 1;
        if (ext.children[1]?.tag === TAG.BOOLEAN) {
          critical = readBoolean(ext.children[1]);
          vi = 2;
        }
        extensions.push({ oid, critical, value: readOctetString(ext.children[vi], 'extnValue') });
      }
    }
  }
  const algOid = readOid(child(sigAlg, 0, 'algorithm'));
  if (algOid !== readOid(child(innerAlg, 0, 'algorithm'))) fail('inner and outer signature algorithms differ');
  return {
    der: root.raw,
    tbs: tbs.raw,
    version,
    serial,
    issuerRaw: issuerNode.raw,
    subjectRaw: subjectNode.raw,
    issuer: parseName(issuerNode),
    subject: parseName(subjectNode),
    notBefore: readTime(child(validity, 0, 'notBefore')),
    notAfter: readTime(child(validity, 1, 'notAfter')),
    spki: spkiNode.raw,
    extensions,
    signatureAlgorithm: algOid,
    signature,
  };
}

/** Every certificate in a PEM text, parsed. */
export function parseCertificatesPem(pem: string): Certificate[] {
  return decodePemAll(pem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
}

export function getExtension(cert: Certificate, oid: string): Extension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

export function basicConstraints(cert: Certificate): { ca: boolean; pathLen?: number } | undefined {
  const ext = getExtension(cert, OID.basicConstraints);
  if (!ext) return undefined;
  const n = expectTag(parseDer(ext.value), TAG.SEQUENCE, 'BasicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const c of n.children) {
    if (c.tag === TAG.BOOLEAN) ca = readBoolean(c);
    else if (c.tag === TAG.INTEGER) pathLen = Number(BigInt(`0x${toHex(readIntegerBytes(c)) || '0'}`));
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

export const KEY_USAGE = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** The set KeyUsage bits, by name; undefined when the extension is absent. */
export function keyUsage(cert: Certificate): Set<keyof typeof KEY_USAGE> | undefined {
  const ext = getExtension(cert, OID.keyUsage);
  if (!ext) return undefined;
  const n = parseDer(ext.value);
  expectTag(n, TAG.BIT_STRING, 'KeyUsage');
  const bits = n.value.subarray(1);
  const out = new Set<keyof typeof KEY_USAGE>();
  for (const [name, bit] of Object.entries(KEY_USAGE) as [keyof typeof KEY_USAGE, number][]) {
    const byte = bits[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.add(name);
  }
  return out;
}

export function extendedKeyUsage(cert: Certificate): string[] | undefined {
  const ext = getExtension(cert, OID.extKeyUsage);
  if (!ext) return undefined;
  return expectTag(parseDer(ext.value), TAG.SEQUENCE, 'ExtKeyUsage').children.map((c) => readOid(c));
}

export function subjectKeyId(cert: Certificate): Uint8Array | undefined {
  const ext = getExtension(cert, OID.subjectKeyIdentifier);
  return ext ? readOctetString(parseDer(ext.value), 'SubjectKeyIdentifier') : undefined;
}

export function authorityKeyId(cert: Certificate): Uint8Array | undefined {
  const ext = getExtension(cert, OID.authorityKeyIdentifier);
  if (!ext) return undefined;
  const n = expectTag(parseDer(ext.value), TAG.SEQUENCE, 'AuthorityKeyIdentifier');
  const kid = n.children.find((c) => c.tag === 0x80);
  return kid?.value;
}

/** All SAN entries of the supported kinds (others are skipped). */
export function subjectAltNames(cert: Certificate): SubjectAltName[] {
  const ext = getExtension(cert, OID.subjectAltName);
  if (!ext) return [];
  const n = expectTag(parseDer(ext.value), TAG.SEQUENCE, 'SubjectAltName');
  const out: SubjectAltName[] = [];
  for (const g of n.children) {
    switch (g.tag) {
      case 0x81:
        out.push({ type: 'email', value: fromUtf8(g.value, 'rfc822Name') });
        break;
      case 0x82:
        out.push({ type: 'dns', value: fromUtf8(g.value, 'dNSName') });
        break;
      case 0x86:
        out.push({ type: 'uri', value: fromUtf8(g.value, 'uniformResourceIdentifier') });
        break;
      case 0xa0: {
        // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY } with IMPLICIT [0]
        const typeId = readOid(child(g, 0, 'otherName type-id'));
        const wrapped = child(g, 1, 'otherName value');
        if (!isContext(wrapped, 0)) fail('otherName value must be [0] EXPLICIT');
        out.push({ type: 'otherName', typeId, value: readString(child(wrapped, 0, 'otherName value'), 'otherName value') });
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/**
 * The signer identity as Sigstore summarises it: the first URI SAN, else the first email, else
 * the Fulcio OtherName (1.3.6.1.4.1.57264.1.7) value.
 */
export function certificateIdentity(cert: Certificate): string | undefined {
  const sans = subjectAltNames(cert);
  return (
    sans.find((s) => s.type === 'uri')?.value ??
    sans.find((s) => s.type === 'email')?.value ??
    sans.find((s) => s.type === 'otherName' && s.typeId === FULCIO_OID.otherName)?.value
  );
}

/** Reads the value of a Fulcio extension: 1.1-1.6 raw bytes, the rest a DER UTF8String. */
export function readFulcioExtensionValue(oid: string, value: Uint8Array): string {
  if (FULCIO_RAW_STRING_OIDS.has(oid)) return fromUtf8(value, `extension ${oid}`);
  const n = parseDer(value); // rejects trailing bytes
  if (n.tag !== TAG.UTF8_STRING) fail(`extension ${oid} is not a UTF8String`);
  return fromUtf8(n.value, `extension ${oid}`);
}

/** All Fulcio extensions present, by name. The issuer prefers 1.8 and falls back to 1.1. */
export function fulcioExtensions(cert: Certificate): Partial<Record<FulcioExtensionName, string>> {
  const out: Partial<Record<FulcioExtensionName, string>> = {};
  for (const [name, oid] of Object.entries(FULCIO_OID) as [FulcioExtensionName, string][]) {
    if (name === 'otherName') continue;
    const ext = getExtension(cert, oid);
    if (ext) out[name] = readFulcioExtensionValue(oid, ext.value);
  }
  if (out.issuer === undefined && out.issuerV1 !== undefined) out.issuer = out.issuerV1;
  return out;
}

/** Hash used by a certificate/CMS signature algorithm OID, and whether it is ECDSA/RSA/Ed25519. */
export function signatureAlgorithmHash(algOid: string): HashName | null {
  switch (algOid) {
    case OID.ecdsaWithSha256:
    case OID.sha256WithRsa:
      return 'sha256';
    case OID.ecdsaWithSha384:
    case OID.sha384WithRsa:
      return 'sha384';
    case OID.ecdsaWithSha512:
    case OID.sha512WithRsa:
      return 'sha512';
    case OID.ed25519:
      return null;
    default:
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unsupported signature algorithm ${algOid}`);
  }
}

/** True when `cert`'s signature verifies under `issuerKey`. Never throws on bad signatures. */
export function isSignedBy(cert: Certificate, issuerKey: PublicKeyInfo): boolean {
  let hash: HashName | null;
  try {
    hash = signatureAlgorithmHash(cert.signatureAlgorithm);
  } catch {
    return false;
  }
  if (hash === null && issuerKey.kind !== 'ed25519') return false;
  return verifySignature(issuerKey, cert.tbs, cert.signature, hash === null ? {} : { hash });
}

// Importing a key costs ~40 µs (OpenSSL's decoders); trusted-root certificates are parsed once
// and asked for their key on every verification, so the key is kept with the parsed certificate.
const certKeys = new WeakMap<Certificate, PublicKeyInfo>();

export function certPublicKey(cert: Certificate): PublicKeyInfo {
  let key = certKeys.get(cert);
  if (!key) certKeys.set(cert, (key = publicKeyFromSpki(cert.spki)));
  return key;
}

export function sameCertificate(a: Certificate, b: Certificate): boolean {
  return bytesEqual(a.der, b.der);
}

export function isSelfIssued(cert: Certificate): boolean {
  return bytesEqual(cert.issuerRaw, cert.subjectRaw);
}
