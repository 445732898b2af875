// TUF metadata (spec v1.0, https://theupdateframework.github.io/specification/latest/) on
// @tufjs/models, the model classes tuf-js itself reads and verifies with, and
// @tufjs/canonical-json (the OLPC canonical JSON every TUF client signs over). What remains
// here is the glue to Waxseal: keys from our signers, asynchronous signing, WaxsealError codes.
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Metadata, Signature, type MetadataKind, type Root, type Snapshot, type Targets, type Timestamp } from '@tufjs/models';
import { WaxsealError, bytesEqual, encodePem, parseJsonBounded, publicKeyFromSpki, sha256, toHex, utf8 } from '@waxseal/core';
import type { Signer } from '@waxseal/keys';

/** The spec version we write (tuf-js and python-tuf accept any 1.x). */
export const TUF_SPEC_VERSION = '1.0.31';

export const TOP_LEVEL_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type RoleName = (typeof TOP_LEVEL_ROLES)[number];

/** The `signed` part of each top-level role, as @tufjs/models classes. */
export interface SignedByRole {
  root: Root;
  targets: Targets;
  snapshot: Snapshot;
  timestamp: Timestamp;
}
export type AnySigned = SignedByRole[RoleName];

/** Canonical JSON bytes of a JSON value (what TUF signatures and key IDs cover). */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  try {
    return utf8(canonicalize(value));
  } catch (e) {
    // canonicalize throws a bare TypeError on floats, undefined, functions...
    throw new WaxsealError('ERR_INVALID_INPUT', `not encodable as TUF canonical JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** The TUF public key for a signer's key; refuses keys/hashes TUF clients cannot verify. */
export function tufKeyForSigner(signer: Pick<Signer, 'kind' | 'hash' | 'publicKeySpki' | 'keyRef'>): Key {
  const ok =
    signer.kind === 'ed25519' ||
    (signer.kind === 'ecdsa-p256' && signer.hash === 'sha256') ||
    (signer.kind === 'ecdsa-p384' && signer.hash === 'sha384');
  if (!ok) {
    throw new WaxsealError(
      'ERR_KEY_UNSUPPORTED',
      `TUF keys must be Ed25519, ECDSA P-256/SHA-256 or ECDSA P-384/SHA-384; ${signer.keyRef} is ${signer.kind}/${signer.hash}`,
    );
  }
  return tufKeyFromSpki(signer.publicKeySpki);
}

const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/**
 * A TUF key from a SubjectPublicKeyInfo, in the securesystemslib forms every client reads
 * (Ed25519: hex of the raw key; ECDSA: PEM SPKI). Hand-written: @tufjs/models only parses keys.
 */
export function tufKeyFromSpki(spki: Uint8Array): Key {
  const info = publicKeyFromSpki(spki);
  let keyType: string;
  let scheme: string;
  let pub: string;
  if (info.kind === 'ed25519') {
    if (spki.length !== ED25519_SPKI_PREFIX.length + 32 || !bytesEqual(spki.subarray(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)) {
      throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'unexpected Ed25519 SubjectPublicKeyInfo encoding');
    }
    [keyType, scheme, pub] = ['ed25519', 'ed25519', toHex(spki.subarray(ED25519_SPKI_PREFIX.length))];
  } else if (info.kind === 'ecdsa-p256') {
    [keyType, scheme, pub] = ['ecdsa', 'ecdsa-sha2-nistp256', encodePem('PUBLIC KEY', spki)];
  } else if (info.kind === 'ecdsa-p384') {
    [keyType, scheme, pub] = ['ecdsa', 'ecdsa-sha2-nistp384', encodePem('PUBLIC KEY', spki)];
  } else {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unsupported TUF key kind ${info.kind}`);
  }
  // Key ID: hex SHA-256 of the canonical JSON of the key object (securesystemslib's rule).
  const keyID = toHex(sha256(canonicalJsonBytes({ keytype: keyType, scheme, keyval: { public: pub } })));
  return new Key({ keyID, keyType, scheme, keyVal: { public: pub } });
}

/**
 * Signs `signed` with every signer (one signature per distinct key, in key ID order for stable
 * output). Metadata.sign() takes a synchronous callback and our signers are asynchronous (KMS,
 * PKCS#11), so we sign the same canonical bytes it would and attach the Signature ourselves.
 */
export async function signMetadata<T extends AnySigned>(signed: T, signers: readonly Signer[]): Promise<Metadata<T>> {
  const message = canonicalJsonBytes(signed.toJSON());
  const byId = new Map<string, Signer>();
  for (const s of signers) {
    const id = tufKeyForSigner(s).keyID;
    if (!byId.has(id)) byId.set(id, s);
  }
  const md = new Metadata(signed);
  for (const id of [...byId.keys()].sort()) {
    md.signatures[id] = new Signature({ keyID: id, sig: toHex(await byId.get(id)!.sign(message)) });
  }
  return md;
}

/**
 * Throws ERR_TUF unless `md` carries a threshold of valid signatures by the keys `delegator`
 * (a root) assigns to `role`. The check itself is @tufjs/models' verifyDelegate, the one tuf-js runs.
 */
export function verifyThreshold(delegator: Metadata<Root>, role: RoleName, md: Metadata<AnySigned>, what: string): void {
  try {
    delegator.verifyDelegate(role, md);
  } catch (e) {
    throw new WaxsealError('ERR_TUF', `${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** TUF's expiry format: second precision, `Z` suffix (python-tuf rejects fractional seconds). */
export function formatExpires(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new WaxsealError('ERR_INVALID_INPUT', 'invalid expiry date');
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Serialised metadata file bytes (indented for humans; clients re-canonicalise before verifying). */
export function encodeMetadata(md: Metadata<AnySigned>): Uint8Array {
  return utf8(`${JSON.stringify(md.toJSON(), null, 2)}\n`);
}

/** Parses a metadata file of role `type` into @tufjs/models classes (signatures are checked separately). */
export function parseMetadata<K extends RoleName>(bytes: Uint8Array, type: K): Metadata<SignedByRole[K]> {
  let v: unknown;
  try {
    v = parseJsonBounded(bytes, { maxBytes: bytes.length });
  } catch {
    throw new WaxsealError('ERR_TUF', `${type} metadata is not valid JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new WaxsealError('ERR_TUF', `${type} metadata is not a JSON object`);
  let md: Metadata<AnySigned>;
  try {
    md = Metadata.fromJSON(type as MetadataKind.Root, v as Parameters<typeof Metadata.fromJSON>[1]);
  } catch (e) {
    throw new WaxsealError('ERR_TUF', `malformed ${type} metadata: ${(e as Error).message}`, { cause: e });
  }
  // The models accept any number here; versions are positive integers (spec 4.3).
  if (!Number.isSafeInteger(md.signed.version) || md.signed.version < 1)
    throw new WaxsealError('ERR_TUF', `${type} metadata has no valid version`);
  return md as Metadata<SignedByRole[K]>;
}

/** The role entry of a root, or ERR_TUF when the root does not define it. */
export function rootRole(root: Root, role: RoleName): { keyIDs: string[]; threshold: number } {
  const r = root.roles[role];
  if (!r) throw new WaxsealError('ERR_TUF', `root v${root.version} defines no ${role} role`);
  return r;
}
