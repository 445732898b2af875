// Hashes, public keys and signature checks: synchronous wrappers over node:crypto with our
// error type and Sigstore's algorithm vocabulary (PublicKeyDetails, HashAlgorithm).
import {
  hash as oneShotHash,
  createPublicKey,
  publicDecrypt,
  constants as cryptoConstants,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { WaxsealError } from './errors.ts';
import { asBuffer, bytesEqual, concat, fromBase64Url } from './bytes.ts';
import { parseDer, expectTag, child, readOid, TAG, seq, nullValue, oid as derOid, octetString } from './der.ts';
import { OID } from './oids.ts';
import { verifyEcdsaDigestNative } from './ecdsa-digest.ts';
import { verifyEcdsaDigestEcdh } from './ecdsa-ecdh.ts';
import { verifyEd25519ph } from './ed25519ph.ts';

export type HashName = 'sha256' | 'sha384' | 'sha512';

/** protobuf-specs HashAlgorithm names. */
export const HASH_ENUM: Record<HashName, string> = { sha256: 'SHA2_256', sha384: 'SHA2_384', sha512: 'SHA2_512' };
export const HASH_SIZE: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };
export const HASH_OID: Record<HashName, string> = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };

export function hashFromEnum(e: string): HashName {
  switch (e) {
    case 'SHA2_256':
      return 'sha256';
    case 'SHA2_384':
      return 'sha384';
    case 'SHA2_512':
      return 'sha512';
    default:
      throw new WaxsealError('ERR_HASH_UNSUPPORTED', `unsupported hash algorithm ${JSON.stringify(e)}`);
  }
}

export function hashFromOid(o: string): HashName {
  if (o === OID.sha256) return 'sha256';
  if (o === OID.sha384) return 'sha384';
  if (o === OID.sha512) return 'sha512';
  if (o === OID.sha1) throw new WaxsealError('ERR_HASH_WEAK', 'SHA-1 is too weak');
  throw new WaxsealError('ERR_HASH_UNSUPPORTED', `unsupported hash algorithm OID ${o}`);
}

export function digest(alg: HashName, data: Uint8Array): Uint8Array {
  // One-shot: no Hash object per call (verification hashes several small inputs per bundle).
  return new Uint8Array(oneShotHash(alg, data, 'buffer'));
}

export const sha256 = (data: Uint8Array): Uint8Array => digest('sha256', data);

/** The kinds of public key the project understands. */
export type KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'ed25519' | 'rsa';

export interface PublicKeyInfo {
  kind: KeyKind;
  /** RSA modulus size in bits, for RSA keys. */
  rsaBits?: number;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  key: KeyObject;
}

const keyCache = new Map<string, PublicKeyInfo>();

/** Parses a DER SPKI into a key we can verify with. Memoised: trust material repeats. */
export function publicKeyFromSpki(spki: Uint8Array): PublicKeyInfo {
  const cacheKey = asBuffer(spki).toString('base64');
  const hit = keyCache.get(cacheKey);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: asBuffer(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'public key is not a valid SubjectPublicKeyInfo', { cause: e });
  }
  const info: PublicKeyInfo = { ...describeKey(key), spki: new Uint8Array(spki), key };
  if (keyCache.size > 4096) keyCache.clear();
  keyCache.set(cacheKey, info);
  return info;
}

export function describeKey(key: KeyObject): { kind: KeyKind; rsaBits?: number } {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (d.namedCurve === 'prime256v1' || d.namedCurve === 'P-256') return { kind: 'ecdsa-p256' };
      if (d.namedCurve === 'secp384r1' || d.namedCurve === 'P-384') return { kind: 'ecdsa-p384' };
      if (d.namedCurve === 'secp521r1' || d.namedCurve === 'P-521') return { kind: 'ecdsa-p521' };
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unsupported elliptic curve ${d.namedCurve}`);
    case 'ed25519':
      return { kind: 'ed25519' };
    case 'rsa':
      return { kind: 'rsa', rsaBits: d.modulusLength ?? 0 };
    default:
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unsupported key type ${key.asymmetricKeyType}`);
  }
}

/** The hash each key kind signs with by default (Sigstore GetDefaultAlgorithmDetails). */
export function defaultHash(kind: KeyKind): HashName {
  switch (kind) {
    case 'ecdsa-p384':
      return 'sha384';
    case 'ecdsa-p521':
    case 'ed25519':
      return 'sha512';
    default:
      return 'sha256';
  }
}

/** protobuf-specs PublicKeyDetails for a key (Ed25519 as used for hashedrekord: ED25519_PH). */
export function keyDetails(info: { kind: KeyKind; rsaBits?: number }, ed25519Prehash = false): string {
  switch (info.kind) {
    case 'ecdsa-p256':
      return 'PKIX_ECDSA_P256_SHA_256';
    case 'ecdsa-p384':
      return 'PKIX_ECDSA_P384_SHA_384';
    case 'ecdsa-p521':
      return 'PKIX_ECDSA_P521_SHA_512';
    case 'ed25519':
      return ed25519Prehash ? 'PKIX_ED25519_PH' : 'PKIX_ED25519';
    case 'rsa':
      return `PKIX_RSA_PKCS1V15_${info.rsaBits}_SHA256`;
  }
}

/**
 * Verifies a signature over `data`. ECDSA signatures are DER; RSA is PKCS#1 v1.5; Ed25519 is
 * pure unless `prehashed` marks `data` as an already-computed digest (then ECDSA/RSA verify the
 * digest directly and Ed25519 uses Ed25519ph). Returns false on mismatch; never throws on
 * garbage signatures.
 */
export function verifySignature(
  pub: PublicKeyInfo,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { hash?: HashName; prehashed?: boolean } = {},
): boolean {
  const hash = opts.hash ?? defaultHash(pub.kind);
  try {
    if (opts.prehashed) return verifyPrehashed(pub, hash, data, signature);
    if (pub.kind === 'ed25519') return nodeVerify(null, asBuffer(data), pub.key, asBuffer(signature));
    return nodeVerify(hash, asBuffer(data), pub.key, asBuffer(signature)); // ECDSA: DER is the default
  } catch {
    return false;
  }
}

// node:crypto always hashes the message itself, so signatures over a digest (hashedrekord,
// digest-only verification) need another path: RSA through the recovered DigestInfo, ECDSA
// through OpenSSL's ECDSA_do_verify when the native addon is built (ecdsa-digest.ts), else
// through OpenSSL's scalar multiplications behind the ECDH API (ecdsa-ecdh.ts), Ed25519ph with
// a small BigInt implementation (ed25519ph.ts): no third-party code on the verification path.
function verifyPrehashed(pub: PublicKeyInfo, hash: HashName, digestBytes: Uint8Array, signature: Uint8Array): boolean {
  if (pub.kind === 'ed25519') return verifyEd25519ph(rawEd25519(pub), digestBytes, signature);
  if (digestBytes.length !== HASH_SIZE[hash]) return false;
  if (pub.kind === 'rsa') {
    const digestInfo = seq(seq(derOid(HASH_OID[hash]), nullValue()), octetString(digestBytes));
    let recovered: Buffer;
    try {
      recovered = publicDecrypt({ key: pub.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, asBuffer(signature));
    } catch {
      return false;
    }
    return bytesEqual(recovered, digestInfo);
  }
  const bits = pub.kind === 'ecdsa-p256' ? 256 : pub.kind === 'ecdsa-p384' ? 384 : 521;
  const point = rawEcPoint(pub);
  return verifyEcdsaDigestNative(bits, point, digestBytes, signature) ?? verifyEcdsaDigestEcdh(bits, point, digestBytes, signature);
}

/** The uncompressed point (0x04 || X || Y) of an EC public key. */
export function rawEcPoint(pub: PublicKeyInfo): Uint8Array {
  const jwk = pub.key.export({ format: 'jwk' });
  return concat(Uint8Array.of(4), fromBase64Url(jwk.x!), fromBase64Url(jwk.y!));
}

function rawEd25519(pub: PublicKeyInfo): Uint8Array {
  return fromBase64Url(pub.key.export({ format: 'jwk' }).x!);
}

/** Reads the algorithm OID and curve OID out of a DER SPKI without building a key. */
export function spkiAlgorithm(spki: Uint8Array): { algorithm: string; parameter?: string } {
  const n = parseDer(spki);
  const alg = expectTag(child(n, 0, 'algorithm'), TAG.SEQUENCE, 'AlgorithmIdentifier');
  const algorithm = readOid(alg.children[0], 'algorithm');
  const p = alg.children[1];
  return p && p.tag === TAG.OID ? { algorithm, parameter: readOid(p) } : { algorithm };
}
