// Raw git commit and tag objects (`git cat-file commit|tag` output): split the signature from
// the signed payload exactly as git does (commit.c parse_buffer_signed_by_header,
// gpg-interface.c parse_signature), and read the identities people recognise a commit by.
import { WaxsealError, fromUtf8 } from '@waxseal/core';

export type SignatureFormat = 'x509' | 'openpgp' | 'ssh';

export interface GitIdent {
  name: string;
  email: string;
  /** Seconds since the epoch, as the object states it (unauthenticated). */
  time: number;
  raw: string;
}

export interface SignedGitObject {
  type: 'commit' | 'tag';
  /** The bytes the signature covers: the object without its signature. */
  payload: Uint8Array;
  /** The armored signature as git hands it to the signing program, or undefined when unsigned. */
  signature: string | undefined;
  format: SignatureFormat | undefined;
  /** commit: author; tag: tagger. */
  author: GitIdent | undefined;
  committer: GitIdent | undefined;
  /** The first line of the message. */
  subject: string;
}

const SIG_STARTS: [string, SignatureFormat][] = [
  ['-----BEGIN SIGNED MESSAGE-----', 'x509'],
  ['-----BEGIN PGP SIGNATURE-----', 'openpgp'],
  ['-----BEGIN PGP MESSAGE-----', 'openpgp'],
  ['-----BEGIN SSH SIGNATURE-----', 'ssh'],
];

function formatOf(sig: string): SignatureFormat | undefined {
  return SIG_STARTS.find(([start]) => sig.startsWith(start))?.[1];
}

function parseIdent(raw: string | undefined): GitIdent | undefined {
  if (raw === undefined) return undefined;
  raw = displayText(raw);
  const m = /^(.*?) ?<([^>]*)> (\d+)(?: [+-]\d{4})?$/.exec(raw);
  if (!m) return { name: raw, email: '', time: 0, raw };
  return { name: m[1]!, email: m[2]!, time: Number(m[3]), raw };
}

/** Headers of an object (up to the first blank line): name -> first value, continuations joined. */
function headers(text: string): { fields: Map<string, string>; bodyStart: number } {
  const fields = new Map<string, string>();
  let pos = 0;
  let last: string | undefined;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const line = text.slice(pos, nl < 0 ? text.length : nl);
    pos = nl < 0 ? text.length : nl + 1;
    if (line === '') break;
    if (line.startsWith(' ') && last !== undefined) {
      fields.set(last, `${fields.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const sp = line.indexOf(' ');
    const name = sp < 0 ? line : line.slice(0, sp);
    last = fields.has(name) ? undefined : name;
    if (last !== undefined) fields.set(name, sp < 0 ? '' : line.slice(sp + 1));
  }
  return { fields, bodyStart: pos };
}

function subjectOf(text: string, bodyStart: number): string {
  return displayText(text.slice(bodyStart).split('\n', 1)[0] ?? '');
}

/**
 * Splits a commit: the signature is the `gpgsig` header (SHA-1 repositories; `gpgsig-sha256`
 * in SHA-256 ones), continuation lines included; the payload is the commit without it.
 */
export function parseCommit(raw: Uint8Array): SignedGitObject {
  const text = fromUtf8OrLatin1(raw);
  const { fields, bodyStart } = headers(text);
  if (!fields.has('tree')) throw new WaxsealError('ERR_INVALID_INPUT', 'not a git commit object (no tree header)');
  // Remove the signature header and its continuation lines from the header block, byte for byte.
  // `text` is `raw` read as latin1, so offsets in one are offsets in the other.
  const keep: Uint8Array[] = [];
  const sigParts: string[] = [];
  let pos = 0;
  let keepFrom = 0;
  let inSig = false;
  const headerEnd = bodyStart;
  while (pos < headerEnd) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0 || nl >= headerEnd) nl = headerEnd - 1;
    const isCont = text.charCodeAt(pos) === 0x20;
    if (!isCont) {
      const wasSig = inSig;
      inSig = text.startsWith('gpgsig ', pos) || text.startsWith('gpgsig-sha256 ', pos);
      if (inSig && !wasSig && pos > keepFrom) keep.push(raw.subarray(keepFrom, pos));
      if (!inSig && wasSig) keepFrom = pos;
    }
    if (inSig) sigParts.push(text.slice(isCont ? pos + 1 : text.indexOf(' ', pos) + 1, nl + 1));
    pos = nl + 1;
  }
  if (!inSig && pos > keepFrom) keep.push(raw.subarray(keepFrom, pos));
  const signature = sigParts.length ? sigParts.join('') : undefined;
  keep.push(raw.subarray(headerEnd));
  const payload = Buffer.concat(keep);
  return {
    type: 'commit',
    payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.length),
    signature,
    format: signature === undefined ? undefined : (formatOf(signature) ?? 'openpgp'),
    author: parseIdent(fields.get('author')),
    committer: parseIdent(fields.get('committer')),
    subject: subjectOf(text, bodyStart),
  };
}

/** Splits a tag: the signature is the last armored block at the start of a line in the message. */
export function parseTag(raw: Uint8Array): SignedGitObject {
  const text = fromUtf8OrLatin1(raw);
  const { fields, bodyStart } = headers(text);
  if (!fields.has('object') || !fields.has('tag')) throw new WaxsealError('ERR_INVALID_INPUT', 'not a git tag object');
  let cut = -1;
  for (const [start] of SIG_STARTS) {
    for (let i = text.indexOf(start, bodyStart); i >= 0; i = text.indexOf(start, i + 1)) {
      if (text[i - 1] === '\n' && i > cut) cut = i;
    }
  }
  const signature = cut < 0 ? undefined : text.slice(cut);
  const payload = cut < 0 ? raw : raw.subarray(0, cut);
  const tagger = parseIdent(fields.get('tagger'));
  return {
    type: 'tag',
    payload,
    signature,
    format: signature === undefined ? undefined : formatOf(signature),
    author: tagger,
    committer: tagger,
    subject: subjectOf(text, bodyStart),
  };
}

export function parseGitObject(type: 'commit' | 'tag', raw: Uint8Array): SignedGitObject {
  return type === 'commit' ? parseCommit(raw) : parseTag(raw);
}

// Objects are bytes (any encoding); offsets found in the text must map back to bytes exactly, so
// the text is read as latin1 (one char per byte) and only names and subjects are decoded as UTF-8.
function fromUtf8OrLatin1(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1');
}

/** UTF-8 text of an ident or subject (read as latin1 to keep byte offsets). */
function displayText(s: string): string {
  try {
    return fromUtf8(Buffer.from(s, 'latin1'));
  } catch {
    return s;
  }
}
