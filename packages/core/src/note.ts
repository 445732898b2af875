// C2SP signed-note and tlog-checkpoint codecs, plus the key-ID rules Rekor v1 and v2 use.
//   note      = text ("\n"-terminated lines) "\n" signature-lines
//   sig line  = "— " name " " base64(keyHint[4] || signature) "\n"
// https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint
import { WaxsealError } from './errors.ts';
import { fromBase64, toBase64, utf8, concat, bytesEqual } from './bytes.ts';
import { sha256, verifySignature, type PublicKeyInfo } from './crypto.ts';

export const MAX_NOTE_BYTES = 1 << 20;
export const MAX_NOTE_SIGNATURES = 100;

export interface NoteSignature {
  name: string;
  /** First 4 bytes of the key ID. */
  keyHint: Uint8Array;
  signature: Uint8Array;
}

export interface SignedNote {
  /** The signed text, including its final newline. */
  text: string;
  signatures: NoteSignature[];
}

function bad(message: string): never {
  throw new WaxsealError('ERR_INVALID_INPUT', `signed note: ${message}`);
}

const NAME_RE = /^[^\s+]+$/;

export function parseSignedNote(note: string): SignedNote {
  if (typeof note !== 'string') bad('not text');
  if (note.length > MAX_NOTE_BYTES) bad('too large');
  // C2SP: valid UTF-8 (no lone surrogates here) and no ASCII control characters but newline.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\x00-\x09\x0b-\x1f]|[\ud800-\udfff]/u.test(note)) bad('control characters or invalid UTF-16 are not allowed');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) bad('missing blank line before signatures');
  const text = note.slice(0, split + 1);
  const sigBlock = note.slice(split + 2);
  if (!sigBlock.endsWith('\n')) bad('signature block must end with a newline');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) bad('too many signatures');
  const signatures = lines.map((line) => {
    // Key names hold no whitespace and no "+"; the signature is canonical padded base64, so a
    // note has one spelling (formatSignedNote gives it back byte for byte).
    const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/]+=*)$/.exec(line);
    if (!m) bad(`malformed signature line ${JSON.stringify(line.slice(0, 80))}`);
    const blob = fromBase64(m[2]!, 'note signature');
    if (toBase64(blob) !== m[2]) bad('signature is not canonical base64');
    if (blob.length < 5) bad('signature too short');
    return { name: m[1]!, keyHint: blob.subarray(0, 4), signature: blob.subarray(4) };
  });
  if (signatures.length === 0) bad('no signatures');
  return { text, signatures };
}

export function formatSignedNote(text: string, signatures: readonly NoteSignature[]): string {
  if (!text.endsWith('\n')) throw new TypeError('note text must end with a newline');
  return `${text}\n${signatures.map((s) => `\u2014 ${s.name} ${toBase64(concat(s.keyHint, s.signature))}\n`).join('')}`;
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** Extension lines after the root hash (without their newlines). */
  extensions: string[];
}

export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) bad('checkpoint must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) bad('checkpoint needs origin, size and root hash lines');
  const [origin, sizeLine, rootLine] = lines as [string, string, string];
  if (!origin) bad('empty origin');
  if (!/^(0|[1-9]\d*)$/.test(sizeLine)) bad('tree size is not a decimal number');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) bad('tree size too large');
  const rootHash = fromBase64(rootLine, 'checkpoint root hash');
  if (rootHash.length !== 32) bad('root hash is not 32 bytes');
  if (toBase64(rootHash) !== rootLine) bad('root hash is not canonical base64');
  const extensions = lines.slice(3);
  if (extensions.some((l) => l === '')) bad('empty extension line');
  return { origin, size, rootHash, extensions };
}

export function formatCheckpoint(c: Checkpoint): string {
  return `${[c.origin, String(c.size), toBase64(c.rootHash), ...c.extensions].join('\n')}\n`;
}

/** Signature types of C2SP signed-note key IDs. */
export const NOTE_KEY_TYPE = { ed25519: 0x01, ecdsa: 0x02, cosignatureV1: 0x04, unassigned: 0xff } as const;

/**
 * The note key ID for a log key, as rekor-tiles computes it:
 *  - Ed25519: SHA-256(name || 0x0A || 0x01 || raw 32-byte key)
 *  - ECDSA:   SHA-256(DER SPKI)  (type 0x02, not name-bound; equals the v1 log ID)
 *  - RSA:     SHA-256(name || 0x0A || 0xFF || "PKIX-RSA-PKCS#1v1.5" || DER SPKI)
 */
export function noteKeyId(name: string, pub: PublicKeyInfo): Uint8Array {
  switch (pub.kind) {
    case 'ed25519':
      return sha256(concat(utf8(name), Uint8Array.of(0x0a, NOTE_KEY_TYPE.ed25519), rawEd25519(pub.spki)));
    case 'rsa':
      return sha256(concat(utf8(name), Uint8Array.of(0x0a, NOTE_KEY_TYPE.unassigned), utf8('PKIX-RSA-PKCS#1v1.5'), pub.spki));
    default:
      return sha256(pub.spki);
  }
}

/** The 32-byte Ed25519 key inside its 44-byte SPKI. */
export function rawEd25519(spki: Uint8Array): Uint8Array {
  if (spki.length !== 44) throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'not an Ed25519 SPKI');
  return spki.subarray(12);
}

export interface NoteVerifier {
  name: string;
  /** 4-byte hint the signature line must carry. */
  keyHint: Uint8Array;
  key: PublicKeyInfo;
}

/** A verifier for Rekor v2 / C2SP logs: name-bound key ID hint. */
export function noteVerifier(name: string, key: PublicKeyInfo): NoteVerifier {
  if (!NAME_RE.test(name)) throw new WaxsealError('ERR_INVALID_INPUT', `invalid note key name ${JSON.stringify(name)}`);
  return { name, keyHint: noteKeyId(name, key).subarray(0, 4), key };
}

/** A verifier for Rekor v1 checkpoints: hint = SHA-256(SPKI)[:4], name = hostname. */
export function rekorV1NoteVerifier(name: string, key: PublicKeyInfo): NoteVerifier {
  return { name, keyHint: sha256(key.spki).subarray(0, 4), key };
}

/**
 * True when the note carries a valid signature from `v`. Signatures from other keys are
 * ignored (C2SP: verifiers must ignore unknown signers, e.g. witness cosignatures).
 */
export function noteSignedBy(note: SignedNote, v: NoteVerifier): boolean {
  const msg = utf8(note.text);
  for (const s of note.signatures) {
    if (s.name !== v.name || !bytesEqual(s.keyHint, v.keyHint)) continue;
    if (verifySignature(v.key, msg, s.signature)) return true;
  }
  return false;
}
