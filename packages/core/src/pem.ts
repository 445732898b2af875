// PEM armour (RFC 7468), strict on read.
import { WaxsealError } from './errors.ts';
import { fromBase64, toBase64 } from './bytes.ts';

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;

/** All PEM blocks in `text`, in order. Text between blocks is ignored. */
export function decodePemAll(text: string): PemBlock[] {
  if (typeof text !== 'string') throw new WaxsealError('ERR_PEM_PARSE', 'PEM input must be text');
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK_RE)) {
    const body = m[2]!.replace(/\s+/g, '');
    const der = fromBase64(body, `PEM ${m[1]} body`);
    // Padded base64 with zero spare bits (RFC 7468 strict): one body per DER value, not four.
    if (toBase64(der) !== body) throw new WaxsealError('ERR_PEM_PARSE', `PEM ${m[1]} body is not canonical base64`);
    out.push({ label: m[1]!, der });
  }
  return out;
}

/** Exactly one block, optionally with one of the given labels. */
export function decodePem(text: string, labels?: readonly string[]): PemBlock {
  const blocks = decodePemAll(text);
  if (blocks.length === 0) throw new WaxsealError('ERR_PEM_PARSE', 'no PEM block found');
  const b = blocks[0]!;
  if (labels && !labels.includes(b.label)) {
    throw new WaxsealError('ERR_PEM_PARSE', `expected PEM ${labels.join(' or ')}, found ${b.label}`);
  }
  return b;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = toBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [''];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
