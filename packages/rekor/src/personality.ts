// What the Rekor personality keeps in the log engine's opaque slots (the engine interprets none
// of it; see docs/log.md):
//
//   identity param `treeId`   the v1 tree ID: a random positive int64 for a new log, fixed after
//   entry metadata            integratedTime: Unix seconds at commit, 8 bytes big-endian
//   checkpoint extra          the v1 checkpoint note, UTF-8: origin "<host> - <treeID>", signer
//                             name "<host>", key hint SHA-256(SPKI)[:4], same log key
//   search keys               the v1 /index/retrieve keys (lower-case strings), UTF-8
//
// Logs written before the engine lost its Rekor fields hold the same bytes: their storage reads
// the old integer column as 8 bytes big-endian and the old text columns as UTF-8.
import { randomBytes } from 'node:crypto';
import {
  WaxsealError,
  formatCheckpoint,
  formatSignedNote,
  parseCheckpoint,
  parseSignedNote,
  noteSignedBy,
  rekorV1NoteVerifier,
  fromUtf8,
  sha256,
  utf8,
  type Checkpoint,
  type PublicKeyInfo,
} from '@waxseal/core';
import type { Signer } from '@waxseal/keys';
import { fsckLog as engineFsck, type FsckReport, type LogIdentity, type TransparencyLogOptions } from '@waxseal/tlog';

export const TREE_ID_PARAM = 'treeId';

export function checkTreeId(treeId: string): void {
  if (!/^[1-9]\d{0,18}$/.test(treeId) || BigInt(treeId) > 0x7fffffffffffffffn) {
    throw new WaxsealError('ERR_CONFIG', `tree ID must be a positive decimal int64, got ${JSON.stringify(treeId)}`);
  }
}

function randomTreeId(): string {
  const n = randomBytes(8).readBigUInt64BE() & 0x7fffffffffffffffn;
  return String(n === 0n ? 1n : n);
}

/** The tree ID recorded with a log. */
export function treeIdOf(identity: LogIdentity): string {
  const treeId = identity.params[TREE_ID_PARAM];
  if (treeId === undefined) throw new WaxsealError('ERR_CONFIG', 'the log has no Rekor tree ID recorded');
  checkTreeId(treeId);
  return treeId;
}

export function v1Origin(origin: string, treeId: string): string {
  return `${origin} - ${treeId}`;
}

/** The Rekor v1 log ID: SHA-256 of the log key's SPKI. */
export function v1LogId(spki: Uint8Array): Uint8Array {
  return sha256(spki);
}

/** Entry metadata: integratedTime (Unix seconds) as 8 bytes big-endian. */
export function integratedTimeMetadata(commitTimeMs: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.floor(commitTimeMs / 1000)));
  return out;
}

export function integratedTimeOf(metadata: Uint8Array): number {
  if (metadata.length !== 8) throw new WaxsealError('ERR_LOG_INCONSISTENT', 'log entry has no integratedTime');
  return Number(new DataView(metadata.buffer, metadata.byteOffset, 8).getBigUint64(0));
}

/** The v1 note of a checkpoint (its extra bytes). */
export function v1NoteOf(cp: { extra: Uint8Array }): string {
  return fromUtf8(cp.extra, 'v1 checkpoint note');
}

export async function signCheckpointV1(
  signer: Signer,
  origin: string,
  treeId: string,
  size: number,
  rootHash: Uint8Array,
): Promise<string> {
  const text = formatCheckpoint({ origin: v1Origin(origin, treeId), size, rootHash, extensions: [] });
  const sig = await signer.sign(utf8(text));
  return formatSignedNote(text, [{ name: origin, keyHint: v1LogId(signer.publicKeySpki).subarray(0, 4), signature: sig }]);
}

/** Parses and verifies a Rekor v1 checkpoint ("<origin> - <treeID>") signed by the log key. */
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

/** The engine options that make a TransparencyLog a Rekor log. */
export function rekorLogOptions(
  signer: Signer,
  treeId: string | undefined,
): Pick<TransparencyLogOptions, 'params' | 'newLogParams' | 'entryMetadata' | 'checkpointExtra'> {
  if (treeId !== undefined) checkTreeId(treeId);
  return {
    ...(treeId === undefined ? {} : { params: { [TREE_ID_PARAM]: treeId } }),
    newLogParams: () => ({ [TREE_ID_PARAM]: randomTreeId() }),
    entryMetadata: integratedTimeMetadata,
    checkpointExtra: async (tree, identity) =>
      utf8(await signCheckpointV1(signer, identity.origin, treeIdOf(identity), tree.size, tree.rootHash)),
  };
}

/** `waxseal log fsck`: the engine's checks plus the v1 note of every checkpoint. */
export function fsckLog(dataDir: string): Promise<FsckReport> {
  return engineFsck(dataDir, {
    verifyExtra: (cp, identity, key) => verifyCheckpointNoteV1(v1NoteOf(cp), identity.origin, treeIdOf(identity), key),
  });
}
