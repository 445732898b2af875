// The key material a signing request carries: the submitted public key (PEM or DER), Fulcio's
// "goodkey" strength rules, the allowed client signing algorithms, the proof of possession over
// the principal's name, and the PKCS#10 CSR form. Pure and synchronous.
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import {
  WaxsealError,
  asBuffer,
  fromBase64,
  fromBase64Url,
  fromUtf8,
  toHex,
  utf8,
  parseDer,
  expectTag,
  child,
  readOid,
  readBitStringBytes,
  readSmallInt,
  isContext,
  TAG,
  decodePem,
  decodePemAll,
  OID,
  defaultHash,
  publicKeyFromSpki,
  sha256,
  verifySignature,
  signatureAlgorithmHash,
  type HashName,
  type PublicKeyInfo,
} from '@waxseal/core';

/** Fulcio's default --client-signing-algorithms, as protobuf-specs PublicKeyDetails names. */
export const DEFAULT_CLIENT_SIGNING_ALGORITHMS = [
  'PKIX_ECDSA_P256_SHA_256',
  'PKIX_ECDSA_P384_SHA_384',
  'PKIX_ECDSA_P521_SHA_512',
  'PKIX_RSA_PKCS1V15_2048_SHA256',
  'PKIX_RSA_PKCS1V15_3072_SHA256',
  'PKIX_RSA_PKCS1V15_4096_SHA256',
  'PKIX_ED25519',
] as const;

// Fulcio's flag spellings (sigstore signature.ParseSignatureAlgorithmFlag) for the same algorithms.
const FLAG_NAMES: Record<string, string> = {
  'ecdsa-sha2-256-nistp256': 'PKIX_ECDSA_P256_SHA_256',
  'ecdsa-sha2-384-nistp384': 'PKIX_ECDSA_P384_SHA_384',
  'ecdsa-sha2-512-nistp521': 'PKIX_ECDSA_P521_SHA_512',
  'rsa-sign-pkcs1-2048-sha256': 'PKIX_RSA_PKCS1V15_2048_SHA256',
  'rsa-sign-pkcs1-3072-sha256': 'PKIX_RSA_PKCS1V15_3072_SHA256',
  'rsa-sign-pkcs1-4096-sha256': 'PKIX_RSA_PKCS1V15_4096_SHA256',
  ed25519: 'PKIX_ED25519',
};

const KNOWN_ALGORITHMS = new Set<string>([...DEFAULT_CLIENT_SIGNING_ALGORITHMS, 'PKIX_ED25519_PH']);

/** Validates and normalises an algorithm list (protobuf names or Fulcio flag names). */
export function allowedAlgorithmSet(names: readonly string[] = DEFAULT_CLIENT_SIGNING_ALGORITHMS): ReadonlySet<string> {
  const out = new Set<string>();
  for (const n of names) {
    const name = FLAG_NAMES[n.toLowerCase()] ?? n.toUpperCase();
    if (!KNOWN_ALGORITHMS.has(name)) throw new WaxsealError('ERR_CONFIG', `unknown client signing algorithm ${JSON.stringify(n)}`);
    out.add(name);
  }
  if (out.size === 0) throw new WaxsealError('ERR_CONFIG', 'the client signing algorithm list is empty');
  return out;
}

/** The PublicKeyDetails name of a key used with `hash` (null for pure Ed25519). */
export function signingAlgorithmName(info: PublicKeyInfo, hash: HashName | null): string {
  const h = hash === null ? '' : hash.slice(3);
  switch (info.kind) {
    case 'ecdsa-p256':
      return `PKIX_ECDSA_P256_SHA_${h}`;
    case 'ecdsa-p384':
      return `PKIX_ECDSA_P384_SHA_${h}`;
    case 'ecdsa-p521':
      return `PKIX_ECDSA_P521_SHA_${h}`;
    case 'rsa':
      return `PKIX_RSA_PKCS1V15_${info.rsaBits}_SHA${h}`;
    case 'ed25519':
      return 'PKIX_ED25519';
  }
}

/** Throws ERR_KEY_UNSUPPORTED unless the key/hash pair is in `allowed`; returns its name. */
export function checkAlgorithmAllowed(allowed: ReadonlySet<string>, info: PublicKeyInfo, hash: HashName | null): string {
  const name = signingAlgorithmName(info, hash);
  if (!allowed.has(name)) throw new WaxsealError('ERR_KEY_UNSUPPORTED', `signing algorithm not permitted: ${name}`);
  return name;
}

/** SHA-256 of the DER SubjectPublicKeyInfo, hex: the key fingerprint used in audit records. */
export function keyFingerprint(spki: Uint8Array): string {
  return toHex(sha256(spki));
}

function keyError(message: string): never {
  throw new WaxsealError('ERR_KEY_UNSUPPORTED', message);
}

const EC_POINT_BYTES: Record<string, number> = { [OID.p256]: 65, [OID.p384]: 97, [OID.p521]: 133 };

// Fulcio (Go) refuses compressed EC points, explicit curve parameters and trailing bytes; so do we.
function checkSpkiShape(spki: Uint8Array): void {
  let n;
  try {
    n = parseDer(spki);
  } catch (e) {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'public key is not a valid DER SubjectPublicKeyInfo', { cause: e });
  }
  try {
    expectTag(n, TAG.SEQUENCE, 'SubjectPublicKeyInfo');
    const alg = expectTag(child(n, 0, 'algorithm'), TAG.SEQUENCE, 'AlgorithmIdentifier');
    const algOid = readOid(alg.children[0], 'algorithm');
    if (algOid === OID.ecPublicKey) {
      const curve = alg.children[1];
      if (!curve || curve.tag !== TAG.OID) keyError('elliptic curve keys must name their curve');
      const point = readBitStringBytes(n.children[1], 'subjectPublicKey');
      const expected = EC_POINT_BYTES[readOid(curve)];
      if (expected !== undefined && (point[0] !== 0x04 || point.length !== expected))
        keyError('elliptic curve public keys must be uncompressed points');
    }
  } catch (e) {
    if (e instanceof WaxsealError && e.code === 'ERR_DER_PARSE')
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', `public key is malformed: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Reads a DER SPKI into a key; ERR_KEY_UNSUPPORTED for anything but RSA, P-256/384/521, Ed25519. */
export function publicKeyFromDer(spki: Uint8Array): PublicKeyInfo {
  checkSpkiShape(spki);
  return publicKeyFromSpki(spki);
}

/**
 * `publicKey.content` as Fulcio reads it: a PEM "PUBLIC KEY" (or "RSA PUBLIC KEY") block first,
 * otherwise the string's own bytes as DER.
 */
export function parsePublicKeyContent(content: string): PublicKeyInfo {
  if (typeof content !== 'string' || content.length === 0) keyError('public key not provided');
  if (content.length > 64 * 1024) keyError('public key is too large');
  // The common case, one "PUBLIC KEY" block, without the general PEM scanner (hot path).
  const single = /^\s*-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\s*$/.exec(content);
  if (single) {
    const body = single[1]!.replace(/[\r\n]/g, '');
    if (/^[A-Za-z0-9+/]*={0,2}$/.test(body) && body.length % 4 === 0) return publicKeyFromDer(new Uint8Array(Buffer.from(body, 'base64')));
  }
  const blocks = content.includes('-----BEGIN') ? decodePemAll(content) : [];
  if (blocks.length > 0) {
    const b = blocks[0]!;
    if (b.label === 'PUBLIC KEY') return publicKeyFromDer(b.der);
    if (b.label === 'RSA PUBLIC KEY') {
      let spki: Uint8Array;
      try {
        spki = new Uint8Array(
          createPublicKey({ key: asBuffer(b.der), format: 'der', type: 'pkcs1' }).export({ format: 'der', type: 'spki' }),
        );
      } catch (e) {
        throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'RSA PUBLIC KEY block is not a valid PKCS#1 key', { cause: e });
      }
      return publicKeyFromDer(spki);
    }
    keyError(`expected a PEM PUBLIC KEY block, found ${b.label}`);
  }
  return publicKeyFromDer(utf8(content));
}

// Products of the odd primes below 752, as Let's Encrypt's goodkey checks (gcd with n).
const SMALL_PRIME_PRODUCT = (() => {
  let p = 1n;
  for (let n = 3; n < 752; n += 2) {
    let prime = true;
    for (let d = 3; d * d <= n; d += 2) if (n % d === 0) prime = false;
    if (prime) p *= BigInt(n);
  }
  return p;
})();

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

const goodKeys = new WeakSet<PublicKeyInfo>();

/**
 * Fulcio's goodkey rules: RSA 2048-4096 bits, a modulus that is a whole number of bytes,
 * e = 65537 and no small prime factors; ECDSA on P-256/384/521; Ed25519.
 */
export function checkKeyStrength(info: PublicKeyInfo): void {
  if (goodKeys.has(info)) return;
  if (info.kind === 'rsa') {
    const jwk = info.key.export({ format: 'jwk' });
    const nBytes = fromBase64Url(jwk.n!);
    const n = BigInt(`0x${toHex(nBytes) || '0'}`);
    const bits = n.toString(2).length;
    if (bits < 2048) throw new WaxsealError('ERR_KEY_WEAK', `RSA key is ${bits} bits; at least 2048 are required`);
    if (bits > 4096) throw new WaxsealError('ERR_KEY_WEAK', `RSA key is ${bits} bits; at most 4096 are allowed`);
    if (bits % 8 !== 0) throw new WaxsealError('ERR_KEY_WEAK', `RSA modulus length ${bits} is not a multiple of 8`);
    const e = BigInt(`0x${toHex(fromBase64Url(jwk.e!)) || '0'}`);
    if (e !== 65537n) throw new WaxsealError('ERR_KEY_WEAK', `RSA public exponent must be 65537, found ${e}`);
    if ((n & 1n) === 0n || gcd(n, SMALL_PRIME_PRODUCT) !== 1n)
      throw new WaxsealError('ERR_KEY_WEAK', 'RSA modulus has a small prime factor');
  }
  goodKeys.add(info);
}

const BASE64_STD = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Decodes a protobuf JSON `bytes` value: standard or URL-safe base64, padded or not. */
export function decodeProtoBytes(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string') throw new WaxsealError('ERR_INVALID_INPUT', `${what} must be a base64 string`);
  if (s.length % 4 === 1) throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid base64`);
  if (BASE64_STD.test(s)) return fromBase64(s.padEnd(Math.ceil(s.length / 4) * 4, '='), what);
  if (BASE64_URL.test(s)) return fromBase64Url(s.replace(/=+$/, ''), what);
  throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid base64`);
}

/**
 * Checks the proof of possession: a signature over the UTF-8 challenge with the key's default
 * algorithm. The check runs on libuv's threadpool (node:crypto's callback form): it is the most
 * expensive step of an issuance, and there it overlaps with the event loop's HTTP work.
 */
export function verifyProofOfPossession(info: PublicKeyInfo, challenge: string, proof: Uint8Array): Promise<void> {
  const invalid = () =>
    new WaxsealError(
      'ERR_PROOF_OF_POSSESSION',
      `the proof of possession is not a valid signature over ${JSON.stringify(challenge)} by the submitted key`,
    );
  if (proof.length === 0) return Promise.reject(new WaxsealError('ERR_PROOF_OF_POSSESSION', 'no proof of possession was supplied'));
  return new Promise((resolve, reject) => {
    try {
      // The KeyObject itself (not an options object) and DER, node's default ECDSA encoding.
      nodeVerify(info.kind === 'ed25519' ? null : defaultHash(info.kind), utf8(challenge), info.key, proof, (err, ok) =>
        !err && ok ? resolve() : reject(invalid()),
      );
    } catch {
      reject(invalid());
    }
  });
}

export interface ParsedCsr {
  /** DER certificationRequestInfo (the signed part). */
  readonly info: Uint8Array;
  readonly spki: Uint8Array;
  readonly signatureAlgorithm: string;
  readonly signature: Uint8Array;
}

function csrError(message: string, cause?: unknown): WaxsealError {
  return new WaxsealError('ERR_CSR_INVALID', message, cause === undefined ? {} : { cause });
}

/** Parses a DER PKCS#10 CertificationRequest (version 1); the subject and attributes are ignored. */
export function parseCsrDer(der: Uint8Array): ParsedCsr {
  try {
    const root = expectTag(parseDer(der), TAG.SEQUENCE, 'CertificationRequest');
    if (root.children.length !== 3) throw csrError('certificate signing request: expected info, algorithm and signature');
    const info = expectTag(root.children[0], TAG.SEQUENCE, 'certificationRequestInfo');
    if (readSmallInt(child(info, 0, 'version'), 'version') !== 0) throw csrError('certificate signing request: unsupported version');
    expectTag(child(info, 1, 'subject'), TAG.SEQUENCE, 'subject');
    const spki = expectTag(child(info, 2, 'subjectPKInfo'), TAG.SEQUENCE, 'subjectPKInfo');
    const attrs = info.children[3];
    if (info.children.length > 4 || (attrs !== undefined && !isContext(attrs, 0)))
      throw csrError('certificate signing request: malformed attributes');
    const alg = expectTag(root.children[1], TAG.SEQUENCE, 'signatureAlgorithm');
    const signatureAlgorithm = readOid(alg.children[0], 'signatureAlgorithm');
    return { info: info.raw, spki: spki.raw, signatureAlgorithm, signature: readBitStringBytes(root.children[2], 'signature') };
  } catch (e) {
    if (e instanceof WaxsealError && e.code === 'ERR_CSR_INVALID') throw e;
    throw csrError(`the certificate signing request could not be parsed: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

const ECDSA_SIG_OIDS = new Set<string>([OID.ecdsaWithSha256, OID.ecdsaWithSha384, OID.ecdsaWithSha512]);
const RSA_SIG_OIDS = new Set<string>([OID.sha256WithRsa, OID.sha384WithRsa, OID.sha512WithRsa]);

/**
 * The CSR form of a signing request: `field` is base64 of the PEM text. Parses it, applies the
 * goodkey rules, verifies the self-signature (the proof of possession) and returns the key and the
 * hash of the CSR's signature algorithm (null for Ed25519).
 */
export function checkCsr(field: unknown): { key: PublicKeyInfo; hash: HashName | null } {
  const pemBytes = decodeProtoBytes(field, 'certificateSigningRequest');
  let text: string;
  try {
    text = fromUtf8(pemBytes, 'certificateSigningRequest');
  } catch (e) {
    throw csrError('certificateSigningRequest must be base64 of a PEM CERTIFICATE REQUEST', e);
  }
  let der: Uint8Array;
  try {
    der = decodePem(text, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']).der;
  } catch (e) {
    throw csrError(
      `certificateSigningRequest must be base64 of a PEM CERTIFICATE REQUEST (${e instanceof Error ? e.message : String(e)})`,
      e,
    );
  }
  const csr = parseCsrDer(der);
  const key = publicKeyFromDer(csr.spki);
  checkKeyStrength(key);
  let hash: HashName | null;
  try {
    hash = signatureAlgorithmHash(csr.signatureAlgorithm);
  } catch {
    throw csrError(`unsupported CSR signature algorithm ${csr.signatureAlgorithm}`);
  }
  const family = key.kind === 'rsa' ? RSA_SIG_OIDS : key.kind === 'ed25519' ? new Set<string>([OID.ed25519]) : ECDSA_SIG_OIDS;
  if (!family.has(csr.signatureAlgorithm))
    throw csrError(`CSR signature algorithm ${csr.signatureAlgorithm} does not fit its ${key.kind} key`);
  if (!verifySignature(key, csr.info, csr.signature, hash === null ? {} : { hash }))
    throw csrError('the certificate signing request signature does not verify');
  return { key, hash };
}
