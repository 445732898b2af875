// The code-signing leaf exactly as Fulcio issues it: valid for ten minutes from now, empty
// subject, one critical SAN, KeyUsage digitalSignature (critical), EKU codeSigning, no
// BasicConstraints, AKID = the issuing CA's SKID, an SKID, a random positive 160-bit serial, and
// the Fulcio identity extensions (1.1 raw and 1.8 DER for the issuer, 1.2-1.6 raw, 1.9-1.23 and
// 1.24 as DER UTF8String). The builder is pure; signing goes through the CA Signer.
import {
  WaxsealError,
  concat,
  toHex,
  integer,
  x509Time,
  derTree,
  encodeTree,
  TAG,
  OID,
  FULCIO_OID,
  FULCIO_RAW_STRING_OIDS,
  encodeExtension,
  encodeTbs,
  ext,
  keyIdentifier,
  subjectKeyId,
  type FulcioExtensionName,
  type ExtensionSpec,
  type Certificate,
} from '@waxseal/core';
import { randomFillSync } from 'node:crypto';
import { signatureAlgorithmIdentifier, type Signer } from '@waxseal/keys';
import { CI_EXTENSION_NAMES, type Principal } from './issuers.ts';

export const LEAF_VALIDITY_MS = 10 * 60_000;

// Extension order as Go's x509.CreateCertificate emits Fulcio's template, then its extra extensions.
const IDENTITY_EXTENSION_ORDER: readonly FulcioExtensionName[] = CI_EXTENSION_NAMES;

const EMPTY_NAME = Uint8Array.of(0x30, 0x00);
const KEY_USAGE = ext.keyUsage(['digitalSignature']);
const EXT_KEY_USAGE = ext.extKeyUsage([OID.kpCodeSigning]);
// Printable ASCII only: email and URI SANs are IA5Strings, and control characters have no place there.
const IA5_PRINTABLE = /^[\x21-\x7e]+$/;

function claimsError(message: string): never {
  throw new WaxsealError('ERR_IDENTITY_CLAIMS', message);
}

// A lone UTF-16 surrogate (possible in JSON claims) has no UTF-8 encoding.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(value: string, what: string): void {
  if (LONE_SURROGATE.test(value)) claimsError(`${what} is not well-formed Unicode`);
}

/** The identity extensions of a leaf: the SAN, then Fulcio's extensions in Go's order. */
export function identityExtensions(principal: Principal): ExtensionSpec[] {
  const exts: ExtensionSpec[] = [];
  const { san } = principal;
  if (!san.value) claimsError('the certificate subject alternative name is empty');
  checkText(san.value, 'subject alternative name');
  if (san.type === 'otherName') {
    exts.push(ext.subjectAltName([{ type: 'otherName', typeId: FULCIO_OID.otherName, value: san.value }], true));
  } else {
    if (!IA5_PRINTABLE.test(san.value)) claimsError(`subject alternative name ${JSON.stringify(san.value)} must be printable ASCII`);
    exts.push(ext.subjectAltName([{ type: san.type, value: san.value }], true));
  }
  if (!principal.issuer) claimsError('the certificate issuer extension would be empty');
  checkText(principal.issuer, 'issuer');
  exts.push(ext.raw(FULCIO_OID.issuerV1, principal.issuer));
  const add = (name: FulcioExtensionName, value: string | undefined) => {
    if (!value) return; // never emit empty values
    checkText(value, `extension ${name}`);
    const oid = FULCIO_OID[name];
    exts.push(FULCIO_RAW_STRING_OIDS.has(oid) ? ext.raw(oid, value) : ext.utf8(oid, value));
  };
  for (const name of IDENTITY_EXTENSION_ORDER.slice(0, 5)) add(name, principal.extensions[name]);
  exts.push(ext.utf8(FULCIO_OID.issuer, principal.issuer));
  for (const name of IDENTITY_EXTENSION_ORDER.slice(5)) add(name, principal.extensions[name]);
  add('tokenSubject', principal.subject);
  return exts;
}

/** All extensions of a leaf for `principal` and key `spki`, under the CA with key id `authorityKeyId`. */
export function leafExtensions(principal: Principal, spki: Uint8Array, authorityKeyId: Uint8Array): ExtensionSpec[] {
  return [KEY_USAGE, EXT_KEY_USAGE, ext.subjectKeyId(spki), ext.authorityKeyId(authorityKeyId), ...identityExtensions(principal)];
}

/** The leaf TBSCertificate built with the generic core builders (the reference the fast path must match). */
export function referenceLeafTbs(t: {
  principal: Principal;
  spki: Uint8Array;
  serial: Uint8Array;
  signatureAlgorithm: Uint8Array;
  issuerName: Uint8Array;
  authorityKeyId: Uint8Array;
  notBefore: Date;
}): Uint8Array {
  return encodeTbs({
    serial: t.serial,
    signatureAlgorithm: t.signatureAlgorithm,
    issuer: t.issuerName,
    subject: EMPTY_NAME,
    notBefore: t.notBefore,
    notAfter: new Date(t.notBefore.getTime() + LEAF_VALIDITY_MS),
    spki: t.spki,
    extensions: leafExtensions(t.principal, t.spki, t.authorityKeyId),
  });
}

// ---- fast path: everything constant is encoded once; per certificate only the serial, the
// validity, the key and its SKID are encoded, and the TBS and certificate are written with one
// allocation each (core's tree writer).

const VERSION_3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);
const KU_EKU_DER = concat(encodeExtension(KEY_USAGE), encodeExtension(EXT_KEY_USAGE));
// The SKID extension up to its 20-byte key identifier: 30 1d 06 03 55 1d 0e 04 16 04 14.
const SKID_PREFIX = encodeExtension(ext.subjectKeyId(new Uint8Array(1))).subarray(0, -20);

/** PEM armour without a regular expression (hot path). */
function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let out = '-----BEGIN CERTIFICATE-----\n';
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END CERTIFICATE-----\n`;
}

export interface IssuedCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  /** Serial number, lower-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Issues leaves under one CA certificate. Everything constant per CA (signature algorithm,
 * issuer name, authority key id) is encoded once, and the identity extensions once per principal
 * (a CI job signs many artifacts with one token).
 */
export class LeafIssuer {
  readonly signer: Signer;
  readonly caCertificate: Certificate;
  readonly #sigAlg: Uint8Array;
  readonly #akid: Uint8Array;
  readonly #akidExt: Uint8Array;
  readonly #identity = new WeakMap<Principal, Uint8Array>();

  constructor(signer: Signer, caCertificate: Certificate) {
    const skid = subjectKeyId(caCertificate);
    if (!skid) throw new WaxsealError('ERR_CHAIN_INVALID', 'the issuing CA certificate has no SubjectKeyIdentifier');
    this.signer = signer;
    this.caCertificate = caCertificate;
    this.#sigAlg = signatureAlgorithmIdentifier(signer);
    this.#akid = skid;
    this.#akidExt = encodeExtension(ext.authorityKeyId(skid));
  }

  #identityDer(principal: Principal): Uint8Array {
    let der = this.#identity.get(principal);
    if (!der) {
      der = concat(...identityExtensions(principal).map(encodeExtension));
      this.#identity.set(principal, der);
    }
    return der;
  }

  /** The DER TBSCertificate for a leaf (pure; exposed for tests). */
  buildTbs(
    principal: Principal,
    spki: Uint8Array,
    now: Date,
    serial: Uint8Array = randomLeafSerial(),
  ): { tbs: Uint8Array; notBefore: Date; notAfter: Date } {
    // X.509 times have whole seconds; report the values the certificate really holds.
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + LEAF_VALIDITY_MS);
    if (notBefore < this.caCertificate.notBefore || notBefore > this.caCertificate.notAfter) {
      throw new WaxsealError(
        'ERR_CHAIN_INVALID',
        `the issuing CA certificate is not valid now (${this.caCertificate.notBefore.toISOString()} to ${this.caCertificate.notAfter.toISOString()})`,
      );
    }
    const extensions = derTree(TAG.SEQUENCE, KU_EKU_DER, SKID_PREFIX, keyIdentifier(spki), this.#akidExt, this.#identityDer(principal));
    const tbs = encodeTree(
      derTree(
        TAG.SEQUENCE,
        VERSION_3,
        integer(serial),
        this.#sigAlg,
        this.caCertificate.subjectRaw,
        derTree(TAG.SEQUENCE, x509Time(notBefore), x509Time(notAfter)),
        EMPTY_NAME,
        spki,
        derTree(0xa3, extensions),
      ),
    );
    return { tbs, notBefore, notAfter };
  }

  async issue(principal: Principal, spki: Uint8Array, now: Date): Promise<IssuedCertificate> {
    const serial = randomLeafSerial();
    const { tbs, notBefore, notAfter } = this.buildTbs(principal, spki, now, serial);
    let signature: Uint8Array;
    try {
      // In-memory keys sign on libuv's threadpool (KeyObjectSigner.sign), off the event loop.
      signature = await this.signer.sign(tbs);
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_SIGNER', 'the CA signing key failed to sign', { cause: e });
    }
    const der = encodeTree(derTree(TAG.SEQUENCE, tbs, this.#sigAlg, derTree(TAG.BIT_STRING, ZERO_BYTE, signature)));
    return { der, pem: certificatePem(der), serial: toHex(serial), notBefore, notAfter };
  }

  /** The reference TBS for the same inputs (tests compare it with buildTbs byte for byte). */
  referenceTbs(principal: Principal, spki: Uint8Array, notBefore: Date, serial: Uint8Array): Uint8Array {
    return referenceLeafTbs({
      principal,
      spki,
      serial,
      signatureAlgorithm: this.#sigAlg,
      issuerName: this.caCertificate.subjectRaw,
      authorityKeyId: this.#akid,
      notBefore,
    });
  }
}

const ZERO_BYTE = Uint8Array.of(0);

// Serials come from a pool of random bytes refilled 4 KiB at a time: one CSPRNG call per ~200
// certificates instead of one per certificate. Same form as x509-build's randomSerial: 160 bits,
// positive, never a leading zero byte.
const SERIAL_BYTES = 20;
const serialPool = new Uint8Array(SERIAL_BYTES * 204);
let serialOffset = serialPool.length;

export function randomLeafSerial(): Uint8Array {
  if (serialOffset === serialPool.length) {
    randomFillSync(serialPool);
    serialOffset = 0;
  }
  const s = serialPool.slice(serialOffset, serialOffset + SERIAL_BYTES);
  serialPool.fill(0, serialOffset, serialOffset + SERIAL_BYTES); // never hand out the same bytes twice
  serialOffset += SERIAL_BYTES;
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}
