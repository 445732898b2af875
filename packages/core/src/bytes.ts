// Byte helpers used everywhere. Uint8Array at public boundaries; Buffer only inside.
import { WaxsealError } from './errors.ts';

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * The bytes of canonical padded base64 (what toBase64 writes), or undefined for anything else:
 * decoded, re-encoded and compared, which is cheaper than a regular expression over the text
 * (Node's decoder skips what it cannot read, so the comparison is what makes it strict).
 */
export function decodeCanonicalBase64(s: string): Uint8Array | undefined {
  const decoded = Buffer.from(s, 'base64');
  return decoded.toString('base64') === s ? new Uint8Array(decoded) : undefined;
}

/** Strict standard base64 (protobuf `bytes`): rejects characters outside the alphabet. */
export function fromBase64(s: string, what = 'base64 value'): Uint8Array {
  // Canonical input first (the common case), which the check below accepts with the same bytes.
  const canonical = typeof s === 'string' ? decodeCanonicalBase64(s) : undefined;
  if (canonical) return canonical;
  if (typeof s !== 'string' || !B64_RE.test(s) || s.length % 4 === 1) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid base64`);
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Canonical base64url only (RFC 7515 section 2, RFC 4648 section 3.5): no padding, no whitespace,
 * no length that cannot occur, zero unused bits in the last character. One value, one encoding:
 * caches or replay lists keyed by a token's bytes must not be bypassed by another spelling.
 */
export function fromBase64Url(s: string, what = 'base64url value'): Uint8Array {
  if (typeof s !== 'string' || !B64URL_RE.test(s) || s.length % 4 === 1) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid base64url`);
  }
  const bytes = Buffer.from(s, 'base64url');
  if (bytes.toString('base64url') !== s)
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not canonical base64url (unused bits set)`);
  return new Uint8Array(bytes);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string, what = 'hex value'): Uint8Array {
  if (typeof s !== 'string' || !HEX_RE.test(s)) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid hex`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Strict UTF-8 decoding: invalid sequences are an error, not U+FFFD. */
export function fromUtf8(b: Uint8Array, what = 'text'): string {
  try {
    return strictDecoder.decode(b);
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not valid UTF-8`);
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.compare(a, b) === 0;
}

/** A Buffer view over the same memory, for node:crypto calls. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The URL of a module beside `importMetaUrl` (for worker threads): `.ts` when running from
 * source, `.js` when running the build.
 */
export function siblingModuleUrl(importMetaUrl: string, baseName: string): URL {
  return new URL(`./${baseName}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}
