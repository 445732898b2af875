// Signing the log's C2SP checkpoint: origin "<host>", key hint = C2SP key ID (noteKeyId), signed
// by the log key over the note text (ECDSA: DER over SHA-256; Ed25519: pure). A personality may
// sign more per size (Rekor's v1 note) through TransparencyLogOptions.checkpointExtra.
import {
  formatCheckpoint,
  formatSignedNote,
  noteKeyId,
  parseCheckpoint,
  parseSignedNote,
  noteSignedBy,
  noteVerifier,
  publicKeyFromSpki,
  utf8,
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

/** The log key and its C2SP key ID. */
export interface LogKeyIds {
  key: PublicKeyInfo;
  /** Full 32-byte C2SP key ID of the checkpoint signer (Rekor v2 uses it as its log ID). */
  keyId: Uint8Array;
}

export function logKeyIds(origin: string, spki: Uint8Array): LogKeyIds {
  const key = publicKeyFromSpki(spki);
  return { key, keyId: noteKeyId(origin, key) };
}

/** Signs the C2SP checkpoint of a tree. */
export async function signCheckpoint(signer: Signer, ids: LogKeyIds, origin: string, size: number, rootHash: Uint8Array): Promise<string> {
  const text = formatCheckpoint({ origin, size, rootHash, extensions: [] });
  const sig = await signer.sign(utf8(text));
  return formatSignedNote(text, [{ name: origin, keyHint: ids.keyId.subarray(0, 4), signature: sig }]);
}

/**
 * Parses and verifies a C2SP checkpoint from this log: signature by `key` under `origin`,
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
