// A one-pass DER writer for the timestamp hot path. The core writer (src/core/der.ts) copies
// every level into a fresh buffer; a TimeStampResp nests ~8 levels deep, so here the response is
// described as a tree of pre-encoded leaves, sized bottom-up and written once into one buffer.

/** A constructed node: identifier octet plus children (pre-encoded bytes or further nodes). */
export interface DerTree {
  readonly tag: number;
  readonly children: readonly DerPart[];
  /** Cached content length, filled by measure(). */
  contentLength?: number;
}

export type DerPart = Uint8Array | DerTree;

export function node(tag: number, ...children: DerPart[]): DerTree {
  return { tag, children };
}

function headerLength(contentLength: number): number {
  if (contentLength < 0x80) return 2;
  if (contentLength < 0x100) return 3;
  if (contentLength < 0x10000) return 4;
  if (contentLength < 0x1000000) return 5;
  return 6;
}

function measure(p: DerPart): number {
  if (p instanceof Uint8Array) return p.length;
  let n = 0;
  for (const c of p.children) n += measure(c);
  p.contentLength = n;
  return headerLength(n) + n;
}

function writeHeader(out: Uint8Array, pos: number, tag: number, len: number): number {
  out[pos++] = tag;
  if (len < 0x80) {
    out[pos++] = len;
    return pos;
  }
  const bytes = len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
  out[pos++] = 0x80 | bytes;
  for (let i = bytes - 1; i >= 0; i--) out[pos++] = (len >>> (8 * i)) & 0xff;
  return pos;
}

function write(p: DerPart, out: Uint8Array, pos: number): number {
  if (p instanceof Uint8Array) {
    out.set(p, pos);
    return pos + p.length;
  }
  pos = writeHeader(out, pos, p.tag, p.contentLength!);
  for (const c of p.children) pos = write(c, out, pos);
  return pos;
}

/**
 * Encodes the tree into a single new buffer. The buffer comes from Node's small-buffer pool
 * without zero-filling (every byte is written, which the length check below guarantees); the
 * result is a plain Uint8Array view over it.
 */
export function encodeTree(p: DerPart): Uint8Array {
  const total = measure(p);
  const pooled = Buffer.allocUnsafe(total);
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, total);
  if (write(p, out, 0) !== total) throw new Error('DER writer: encoded length mismatch');
  return out;
}

/** A primitive TLV (e.g. OCTET STRING, INTEGER) around `value`, in one allocation. */
export function primitive(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(headerLength(value.length) + value.length);
  out.set(value, writeHeader(out, 0, tag, value.length));
  return out;
}
