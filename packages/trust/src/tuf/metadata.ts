// TUF metadata (spec v1.0, https://theupdateframework.github.io/specification/latest/): the four
// top-level roles, their keys and signatures, in the exact JSON shape python-tuf, go-tuf and
// tuf-js read. Signatures cover the OLPC canonical JSON of `signed` (./canonical.ts).
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { WaxsealError, asBuffer, bytesEqual, fromHex, toHex, publicKeyFromSpki, sha256, decodePem, encodePem } from '@waxseal/core';
import type { Signer } from '@waxseal/keys';
import { canonicalJsonBytes } from './canonical.ts';

/** The spec version we write (tuf-js and python-tuf accept any 1.x). */
export const TUF_SPEC_VERSION = '1.0.31';

export const TOP_LEVEL_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type RoleName = (typeof TOP_LEVEL_ROLES)[number];

export interface TufKey {
  keytype: 'ecdsa' | 'ed25519';
  scheme: 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ed25519';
  /** ECDSA: PEM SubjectPublicKeyInfo; Ed25519: hex of the 32-byte public key (securesystemslib forms). */
  keyval: { public: string };
}

export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

export interface MetaFileInfo {
  version: number;
  length?: number;
  hashes?: Record<string, string>;
}

export interface TargetFileInfo {
  length: number;
  hashes: Record<string, string>;
  custom?: Record<string, unknown>;
}

interface CommonSigned {
  spec_version: string;
  version: number;
  /** `YYYY-MM-DDTHH:MM:SSZ`, no fractional seconds (python-tuf rejects them). */
  expires: string;
}

export interface RootSigned extends CommonSigned {
  _type: 'root';
  keys: Record<string, TufKey>;
  roles: Record<RoleName, RoleKeys>;
  consistent_snapshot: boolean;
}

export interface TargetsSigned extends CommonSigned {
  _type: 'targets';
  targets: Record<string, TargetFileInfo>;
}

export interface SnapshotSigned extends CommonSigned {
  _type: 'snapshot';
  meta: Record<string, MetaFileInfo>;
}

export interface TimestampSigned extends CommonSigned {
  _type: 'timestamp';
  meta: { 'snapshot.json': MetaFileInfo };
}

export type AnySigned = RootSigned | TargetsSigned | SnapshotSigned | TimestampSigned;

export interface TufSignature {
  keyid: string;
  /** Hex: a DER ECDSA signature or a raw 64-byte Ed25519 signature. */
  sig: string;
}

export interface Metadata<T extends AnySigned = AnySigned> {
  signed: T;
  signatures: TufSignature[];
}

/** The TUF public key object for a signer's key; refuses keys/hashes TUF clients cannot verify. */
export function tufKeyForSigner(signer: Pick<Signer, 'kind' | 'hash' | 'publicKeySpki' | 'keyRef'>): TufKey {
  switch (signer.kind) {
    case 'ed25519':
      return tufKeyFromSpki(signer.publicKeySpki);
    case 'ecdsa-p256':
      if (signer.hash !== 'sha256') break;
      return tufKeyFromSpki(signer.publicKeySpki);
    case 'ecdsa-p384':
      if (signer.hash !== 'sha384') break;
      return tufKeyFromSpki(signer.publicKeySpki);
    default:
      break;
  }
  throw new WaxsealError(
    'ERR_KEY_UNSUPPORTED',
    `TUF keys must be Ed25519, ECDSA P-256/SHA-256 or ECDSA P-384/SHA-384; ${signer.keyRef} is ${signer.kind}/${signer.hash}`,
  );
}

const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export function tufKeyFromSpki(spki: Uint8Array): TufKey {
  const info = publicKeyFromSpki(spki);
  if (info.kind === 'ed25519') {
    if (spki.length !== ED25519_SPKI_PREFIX.length + 32 || !bytesEqual(spki.subarray(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)) {
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'unexpected Ed25519 SubjectPublicKeyInfo encoding');
    }
    const raw = spki.subarray(ED25519_SPKI_PREFIX.length);
    return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: toHex(raw) } };
  }
  if (info.kind === 'ecdsa-p256')
    return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: encodePem('PUBLIC KEY', spki) } };
  if (info.kind === 'ecdsa-p384')
    return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp384', keyval: { public: encodePem('PUBLIC KEY', spki) } };
  throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unsupported TUF key kind ${info.kind}`);
}

/** Key ID: hex SHA-256 of the canonical JSON of the key object (securesystemslib's rule). */
export function tufKeyId(key: TufKey): string {
  return toHex(sha256(canonicalJsonBytes({ keytype: key.keytype, scheme: key.scheme, keyval: { public: key.keyval.public } })));
}

/** A node KeyObject for a TUF key, with the hash its scheme uses (undefined for Ed25519). */
function keyObject(key: TufKey): { key: KeyObject; hash: string | undefined } {
  try {
    if (key.keytype === 'ed25519' && key.scheme === 'ed25519') {
      const raw = fromHex(key.keyval.public, 'Ed25519 public key');
      if (raw.length !== 32) throw new WaxsealError('ERR_TUF', 'Ed25519 public key must be 32 bytes');
      const spki = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
      spki.set(ED25519_SPKI_PREFIX);
      spki.set(raw, ED25519_SPKI_PREFIX.length);
      return { key: createPublicKey({ key: asBuffer(spki), format: 'der', type: 'spki' }), hash: undefined };
    }
    if (key.keytype === 'ecdsa' && (key.scheme === 'ecdsa-sha2-nistp256' || key.scheme === 'ecdsa-sha2-nistp384')) {
      const { der } = decodePem(key.keyval.public, ['PUBLIC KEY']);
      const info = publicKeyFromSpki(der);
      const want = key.scheme === 'ecdsa-sha2-nistp256' ? 'ecdsa-p256' : 'ecdsa-p384';
      if (info.kind !== want) throw new WaxsealError('ERR_TUF', `key curve ${info.kind} does not match scheme ${key.scheme}`);
      return { key: info.key, hash: key.scheme === 'ecdsa-sha2-nistp256' ? 'sha256' : 'sha384' };
    }
  } catch (e) {
    if (e instanceof WaxsealError && e.code === 'ERR_TUF') throw e;
    throw new WaxsealError('ERR_TUF', `unusable TUF key: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  throw new WaxsealError('ERR_TUF', `unsupported TUF key type ${String(key.keytype)}/${String(key.scheme)}`);
}

/** Signs `signed` with every signer; the signature list is sorted by key ID for stable output. */
export async function signMetadata<T extends AnySigned>(signed: T, signers: readonly Signer[]): Promise<Metadata<T>> {
  const message = canonicalJsonBytes(signed);
  const signatures: TufSignature[] = [];
  const seen = new Set<string>();
  for (const s of signers) {
    const keyid = tufKeyId(tufKeyForSigner(s));
    if (seen.has(keyid)) continue;
    seen.add(keyid);
    signatures.push({ keyid, sig: toHex(await s.sign(message)) });
  }
  signatures.sort((a, b) => (a.keyid < b.keyid ? -1 : a.keyid > b.keyid ? 1 : 0));
  return { signed, signatures };
}

/**
 * Counts the distinct keys of `role` with a valid signature over `md.signed` (the TUF threshold
 * rule: signatures by keys outside the role, duplicates and bad signatures count for nothing).
 */
export function countValidSignatures(md: Metadata, keys: Record<string, TufKey>, role: RoleKeys): number {
  const message = canonicalJsonBytes(md.signed);
  const valid = new Set<string>();
  for (const sig of md.signatures) {
    if (!role.keyids.includes(sig.keyid) || valid.has(sig.keyid)) continue;
    const key = keys[sig.keyid];
    if (!key || typeof sig.sig !== 'string' || !/^[0-9a-fA-F]*$/.test(sig.sig)) continue;
    const { key: pub, hash } = keyObject(key);
    let ok = false;
    try {
      ok =
        hash === undefined
          ? nodeVerify(null, message, pub, Buffer.from(sig.sig, 'hex'))
          : nodeVerify(hash, message, { key: pub, dsaEncoding: 'der' }, Buffer.from(sig.sig, 'hex'));
    } catch {
      ok = false;
    }
    if (ok) valid.add(sig.keyid);
  }
  return valid.size;
}

/** Throws ERR_TUF unless `md` carries at least `role.threshold` valid signatures. */
export function verifyThreshold(md: Metadata, keys: Record<string, TufKey>, role: RoleKeys, what: string): void {
  const n = countValidSignatures(md, keys, role);
  if (n < role.threshold) throw new WaxsealError('ERR_TUF', `${what} is signed by ${n}/${role.threshold} required keys`);
}

/** TUF's expiry format: second precision, `Z` suffix. */
export function formatExpires(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new WaxsealError('ERR_INVALID_INPUT', 'invalid expiry date');
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Serialised metadata file bytes (indented for humans; clients re-canonicalise before verifying). */
export function encodeMetadata(md: Metadata): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(md, null, 2)}\n`);
}

/** Parses a metadata file and checks its shape and `_type` (signatures are checked separately). */
export function parseMetadata<K extends AnySigned['_type']>(bytes: Uint8Array, type: K): Metadata<Extract<AnySigned, { _type: K }>> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new WaxsealError('ERR_TUF', `${type} metadata is not valid JSON`);
  }
  const md = v as Partial<Metadata>;
  if (typeof md !== 'object' || md === null || typeof md.signed !== 'object' || md.signed === null || !Array.isArray(md.signatures)) {
    throw new WaxsealError('ERR_TUF', `${type} metadata lacks signed/signatures`);
  }
  const s = md.signed as unknown as Record<string, unknown>;
  if (s['_type'] !== type) throw new WaxsealError('ERR_TUF', `expected ${type} metadata, got ${JSON.stringify(s['_type'])}`);
  if (!Number.isSafeInteger(s['version']) || (s['version'] as number) < 1)
    throw new WaxsealError('ERR_TUF', `${type} metadata has no valid version`);
  if (typeof s['expires'] !== 'string' || Number.isNaN(Date.parse(s['expires'])))
    throw new WaxsealError('ERR_TUF', `${type} metadata has no valid expiry`);
  return md as Metadata<Extract<AnySigned, { _type: K }>>;
}
