// Signing the log's checkpoints. One tree, two notes per size:
//   v2 (C2SP):  origin "<host>",             key hint = C2SP key ID (noteKeyId)
//   v1 (Rekor): origin "<host> - <treeID>",  key hint = SHA-256(SPKI)[:4], signer name "<host>"
// Both are signed by the same log key over the note text (ECDSA: DER over SHA-256; Ed25519: pure).
import {
  formatCheckpoint,
  formatSignedNote,
  noteKeyId,
  parseCheckpoint,
  parseSignedNote,
  noteSignedBy,
  noteVerifier,
  rekorV1NoteVerifier,
  publicKeyFromSpki,
  sha256,
  utf8,
  bytesEqual,
  WaxsealError,
  type Checkpoint,
  type PublicKeyInfo,
} from '@waxseal/core';
import type { Signer } from '@waxseal/keys';

const NAME_RE = /^[^\s+]+$/;

export function checkOrigin(origin: string): void {
  if (typeof origin !== 'string' || !NAME_RE.test(origin) || origin.length > 255) {
    throw new WaxsealError('ERR_CONFIG', `log origin must be a host-like name without spaces or '+', got ${JSON.stringify(origin)}`);
  }
}

export function checkTreeId(treeId: string): void {
  if (!/^[1-9]\d{0,18}$/.test(treeId) || BigInt(treeId) > 0x7fffffffffffffffn) {
    throw new WaxsealError('ERR_CONFIG', `tree ID must be a positive decimal int64, got ${JSON.stringify(treeId)}`);
  }
}

export function v1Origin(origin: string, treeId: string): string {
  return `${origin} - ${treeId}`;
}

/** The log's identifiers derived from its key and origin. */
export interface LogKeyIds {
  key: PublicKeyInfo;
  /** Full 32-byte C2SP key ID: the Rekor v2 log ID (logId.keyId). */
  v2LogId: Uint8Array;
  /** SHA-256(SPKI): the Rekor v1 log ID (hex in the REST API). */
  v1LogId: Uint8Array;
}

export function logKeyIds(origin: string, spki: Uint8Array): LogKeyIds {
  const key = publicKeyFromSpki(spki);
  return { key, v2LogId: noteKeyId(origin, key), v1LogId: sha256(key.spki) };
}

export interface SignedCheckpoints {
  size: number;
  rootHash: Uint8Array;
  note: string;
  noteV1: string;
}

export async function signCheckpoints(
  signer: Signer,
  origin: string,
  treeId: string,
  size: number,
  rootHash: Uint8Array,
): Promise<SignedCheckpoints> {
  const ids = logKeyIds(origin, signer.publicKeySpki);
  const text = formatCheckpoint({ origin, size, rootHash, extensions: [] });
  const textV1 = formatCheckpoint({ origin: v1Origin(origin, treeId), size, rootHash, extensions: [] });
  const [sig, sigV1] = await Promise.all([signer.sign(utf8(text)), signer.sign(utf8(textV1))]);
  return {
    size,
    rootHash,
    note: formatSignedNote(text, [{ name: origin, keyHint: ids.v2LogId.subarray(0, 4), signature: sig }]),
    noteV1: formatSignedNote(textV1, [{ name: origin, keyHint: ids.v1LogId.subarray(0, 4), signature: sigV1 }]),
  };
}

/**
 * Parses and verifies a v2 (C2SP) checkpoint from this log: signature by `key` under `origin`,
 * origin line equal to `origin`. Other signatures (witnesses) are ignored.
 */
export function verifyCheckpointNote(note: string, origin: string, key: PublicKeyInfo): Checkpoint {
  const signed = parseSignedNote(note);
  if (!noteSignedBy(signed, noteVerifier(origin, key)))
    throw new WaxsealError('ERR_VERIFY_TLOG', 'checkpoint signature does not verify with the log key', {
      check: 'tlog.checkpoint-signature',
    });
  const cp = parseCheckpoint(signed.text);
  if (cp.origin !== origin)
    throw new WaxsealError('ERR_VERIFY_TLOG', `checkpoint origin ${JSON.stringify(cp.origin)} is not ${JSON.stringify(origin)}`, {
      check: 'tlog.checkpoint-origin',
    });
  return cp;
}

/** The same for a Rekor v1 checkpoint ("<origin> - <treeID>"). */
export function verifyCheckpointNoteV1(note: string, origin: string, treeId: string, key: PublicKeyInfo): Checkpoint {
  const signed = parseSignedNote(note);
  if (!noteSignedBy(signed, rekorV1NoteVerifier(origin, key)))
    throw new WaxsealError('ERR_VERIFY_TLOG', 'v1 checkpoint signature does not verify with the log key', {
      check: 'tlog.checkpoint-signature',
    });
  const cp = parseCheckpoint(signed.text);
  if (cp.origin !== v1Origin(origin, treeId))
    throw new WaxsealError('ERR_VERIFY_TLOG', 'v1 checkpoint origin does not match', { check: 'tlog.checkpoint-origin' });
  return cp;
}

export function sameRoot(a: Uint8Array, b: Uint8Array): boolean {
  return bytesEqual(a, b);
}
