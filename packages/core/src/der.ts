// A small, hardened DER reader and writer. Everything read here is attacker-controlled:
// lengths are bounded by the enclosing buffer, nesting depth is capped, indefinite lengths and
// non-minimal length encodings are rejected (DER, not BER), and trailing bytes are an error.
// Hand-written rather than asn1js/pkijs: the verifier must stay free of third-party dependencies,
// and these are the hot paths of the CA, the TSA and the verifier.
import { WaxsealError } from './errors.ts';
import { fromUtf8, utf8, toHex } from './bytes.ts';

export const MAX_DER_DEPTH = 32;

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One parsed TLV. `tag` is the full identifier octet (class | constructed | number). */
export interface DerNode {
  readonly tag: number;
  /** The whole TLV, header included (a view into the input). */
  readonly raw: Uint8Array;
  /** The value octets (a view into the input). */
  readonly value: Uint8Array;
  /** Children, for constructed encodings. */
  readonly children: readonly DerNode[];
}

function fail(message: string): never {
  throw new WaxsealError('ERR_DER_PARSE', message);
}

// The header of the TLV at `pos` (validated), left in these two for the caller: parsing checks
// every TLV of the input before it builds anything, and that pass allocates nothing.
let hdrTag = 0;
let hdrStart = 0;

/** Reads and checks the TLV header at `pos`; returns the end of its value. */
function header(buf: Uint8Array, pos: number, limit: number, depth: number): number {
  if (depth > MAX_DER_DEPTH) fail('DER nesting too deep');
  if (pos + 2 > limit) fail('truncated DER header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) fail('high-tag-number form is not supported');
  let len = buf[pos + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) fail('indefinite length is not DER');
    if (n > 4) fail('DER length too large');
    if (pos + 2 + n > limit) fail('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (len < 0x80 || buf[pos + 2] === 0) fail('non-minimal DER length');
    hdr += n;
  }
  const end = pos + hdr + len;
  if (end > limit) fail('DER value runs past the end of its container');
  hdrTag = tag;
  hdrStart = pos + hdr;
  return end;
}

/** Checks the TLV at `pos` and everything inside it; returns its end. */
function check(buf: Uint8Array, pos: number, limit: number, depth: number): number {
  const end = header(buf, pos, limit, depth);
  if (hdrTag & 0x20) for (let p = hdrStart; p < end; ) p = check(buf, p, end, depth + 1);
  return end;
}

const NO_CHILDREN: readonly DerNode[] = Object.freeze([]);

/**
 * A node of checked input. Its views and children are made when first asked for: verifiers read
 * a few fields of each structure (and certificates are parsed once per DER elsewhere), so most
 * TLVs of a CMS signature or a timestamp token are never looked at, and cost nothing then.
 */
class CheckedNode implements DerNode {
  readonly tag: number;
  readonly #buf: Uint8Array;
  readonly #pos: number;
  readonly #start: number;
  readonly #end: number;
  #raw: Uint8Array | undefined;
  #value: Uint8Array | undefined;
  #children: readonly DerNode[] | undefined;

  constructor(buf: Uint8Array, pos: number, tag: number, start: number, end: number) {
    this.#buf = buf;
    this.#pos = pos;
    this.tag = tag;
    this.#start = start;
    this.#end = end;
  }

  get raw(): Uint8Array {
    return (this.#raw ??= this.#buf.subarray(this.#pos, this.#end));
  }

  get value(): Uint8Array {
    return (this.#value ??= this.#buf.subarray(this.#start, this.#end));
  }

  get children(): readonly DerNode[] {
    if (this.#children) return this.#children;
    if (!(this.tag & 0x20)) return (this.#children = NO_CHILDREN);
    const out: DerNode[] = [];
    for (let p = this.#start; p < this.#end; ) {
      // Checked already (parseDer): these cannot fail.
      const end = header(this.#buf, p, this.#end, 0);
      out.push(new CheckedNode(this.#buf, p, hdrTag, hdrStart, end));
      p = end;
    }
    return (this.#children = out);
  }
}

/** Parses exactly one DER element; trailing bytes are rejected. */
export function parseDer(buf: Uint8Array): DerNode {
  if (!(buf instanceof Uint8Array)) throw new TypeError('parseDer expects a Uint8Array');
  // Every TLV is checked now, so a malformed input fails here, wherever the fault is.
  const next = check(buf, 0, buf.length, 0);
  if (next !== buf.length) fail('invalid trailing data after DER element');
  const end = header(buf, 0, buf.length, 0);
  return new CheckedNode(buf, 0, hdrTag, hdrStart, end);
}

// ---------- typed accessors (throw ERR_DER_PARSE on shape mismatch) ----------

export function expectTag(n: DerNode | undefined, tag: number, what: string): DerNode {
  if (!n) fail(`missing ${what}`);
  if (n.tag !== tag) fail(`${what}: expected tag 0x${tag.toString(16)}, found 0x${n.tag.toString(16)}`);
  return n;
}

export function child(n: DerNode, i: number, what: string): DerNode {
  const c = n.children[i];
  if (!c) fail(`missing ${what}`);
  return c;
}

export function readOid(n: DerNode | undefined, what = 'OBJECT IDENTIFIER'): string {
  const v = expectTag(n, TAG.OID, what).value;
  if (v.length === 0) fail(`${what}: empty OID`);
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (acc === 0 && b === 0x80) fail(`${what}: non-minimal OID arc`);
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER) fail(`${what}: OID arc too large`);
    if (!(b & 0x80)) {
      parts.push(acc);
      acc = 0;
    } else if (i === v.length - 1) fail(`${what}: truncated OID`);
  }
  const first = parts[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...parts.slice(1)].join('.');
}

/** INTEGER value bytes as an unsigned big-endian magnitude (sign byte stripped). */
export function readIntegerBytes(n: DerNode | undefined, what = 'INTEGER'): Uint8Array {
  const v = expectTag(n, TAG.INTEGER, what).value;
  if (v.length === 0) fail(`${what}: empty INTEGER`);
  if (v.length > 1 && ((v[0] === 0 && !(v[1]! & 0x80)) || (v[0] === 0xff && v[1]! & 0x80))) {
    fail(`${what}: non-minimal INTEGER`);
  }
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

export function readBigInt(n: DerNode | undefined, what = 'INTEGER'): bigint {
  const v = expectTag(n, TAG.INTEGER, what).value;
  readIntegerBytes(n, what);
  let x = 0n;
  for (const b of v) x = (x << 8n) | BigInt(b);
  if (v[0]! & 0x80) x -= 1n << BigInt(v.length * 8);
  return x;
}

export function readSmallInt(n: DerNode | undefined, what = 'INTEGER'): number {
  const x = readBigInt(n, what);
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) fail(`${what}: too large`);
  return Number(x);
}

export function readBoolean(n: DerNode | undefined, what = 'BOOLEAN'): boolean {
  const v = expectTag(n, TAG.BOOLEAN, what).value;
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) fail(`${what}: invalid DER BOOLEAN`);
  return v[0] === 0xff;
}

export function readOctetString(n: DerNode | undefined, what = 'OCTET STRING'): Uint8Array {
  return expectTag(n, TAG.OCTET_STRING, what).value;
}

/** BIT STRING contents; only whole-byte strings (unused bits = 0) are accepted. */
export function readBitStringBytes(n: DerNode | undefined, what = 'BIT STRING'): Uint8Array {
  const v = expectTag(n, TAG.BIT_STRING, what).value;
  if (v.length === 0 || v[0] !== 0) fail(`${what}: expected a BIT STRING with no unused bits`);
  return v.subarray(1);
}

/** Reads any of the common string types as text. */
export function readString(n: DerNode | undefined, what = 'string'): string {
  if (!n) fail(`missing ${what}`);
  switch (n.tag) {
    case TAG.UTF8_STRING:
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x14: // TeletexString, read as Latin-1-ish UTF-8 in practice
    case 0x1a: // VisibleString
      return fromUtf8(n.value, what);
    default:
      fail(`${what}: unexpected string tag 0x${n.tag.toString(16)}`);
  }
}

/** UTCTime / GeneralizedTime (DER forms with Z) to a Date. */
export function readTime(n: DerNode | undefined, what = 'time'): Date {
  if (!n) fail(`missing ${what}`);
  // Times are short ASCII: anything else fails the patterns below (and is not a UTF-8 question).
  if (n.value.length > 64) fail(`${what}: time value too long`);
  const s = String.fromCharCode(...n.value);
  let m: RegExpExecArray | null;
  if (n.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) fail(`${what}: invalid UTCTime`);
    const yy = Number(m[1]);
    return utcDate(yy >= 50 ? 1900 + yy : 2000 + yy, m, 0, `${what}: invalid UTCTime`);
  }
  if (n.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(s);
    if (!m) fail(`${what}: invalid GeneralizedTime`);
    if (m[7]?.endsWith('0')) fail(`${what}: GeneralizedTime fraction has trailing zeros`);
    // Milliseconds by digits (truncated), not through a float that can round up to 1000.
    const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
    return utcDate(Number(m[1]), m, ms, `${what}: invalid GeneralizedTime`);
  }
  fail(`${what}: expected UTCTime or GeneralizedTime`);
}

/**
 * The instant of matched date-time fields m[2..6] in `year`. Out-of-range fields (month 13,
 * 31 April, hour 24, second 60) are an error: Date.UTC would roll them over into another,
 * validly encoded instant, and years 0-99 would turn into 1900-1999.
 */
function utcDate(year: number, m: RegExpExecArray, ms: number, message: string): Date {
  const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(year, mo - 1, d);
  t.setUTCHours(h, mi, s, ms);
  if (
    t.getUTCFullYear() !== year ||
    t.getUTCMonth() !== mo - 1 ||
    t.getUTCDate() !== d ||
    t.getUTCHours() !== h ||
    t.getUTCMinutes() !== mi ||
    t.getUTCSeconds() !== s
  )
    fail(message);
  return t;
}

/** True when the node is a context-specific tag [n] (constructed or primitive). */
export function isContext(n: DerNode | undefined, num: number): boolean {
  return n !== undefined && (n.tag & 0xc0) === 0x80 && (n.tag & 0x1f) === num;
}

// ---------- writer ----------
// One writer for every encoder. A structure is described as a tree: leaves are already-encoded
// bytes, inner nodes a tag and children. It is sized bottom-up, then written front to back into
// one buffer, so nesting costs no copies (a TimeStampResp nests ~8 levels on the TSA hot path).
// The convenience encoders (tlv, seq, setOf, integer...) sit on the same sizing and header code.

/** A constructed node: identifier octet plus children (encoded bytes or further nodes). */
export interface DerTree {
  readonly tag: number;
  readonly children: readonly DerPart[];
  /** Content length, filled in while sizing. */
  contentLength?: number;
}

export type DerPart = Uint8Array | DerTree;

export function derTree(tag: number, ...children: DerPart[]): DerTree {
  return { tag, children };
}

function headerLength(contentLength: number): number {
  if (contentLength < 0x80) return 2;
  if (contentLength < 0x100) return 3;
  if (contentLength < 0x10000) return 4;
  if (contentLength < 0x1000000) return 5;
  if (contentLength <= 0xffffffff) return 6;
  throw new RangeError('DER value longer than 4 GiB');
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

function encodeInto(p: DerPart, alloc: (n: number) => Uint8Array): Uint8Array {
  const total = measure(p);
  const out = alloc(total);
  if (write(p, out, 0) !== total) throw new Error('DER writer: encoded length mismatch');
  return out;
}

// Every byte of the output is written (encodeInto checks the length), so no zero-filling needed.
function pooled(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/**
 * Encodes a tree into one new buffer, for hot paths. The buffer is a view into Node's shared
 * small-buffer pool (no zero-filling): use its byteOffset/byteLength, never its whole
 * `.buffer`. The helpers below return buffers of their own.
 */
export function encodeTree(p: DerPart): Uint8Array {
  return encodeInto(p, pooled);
}

const fresh = (n: number): Uint8Array => new Uint8Array(n);

/** Encodes one TLV with the given identifier octet. */
export function tlv(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(headerLength(value.length) + value.length);
  out.set(value, writeHeader(out, 0, tag, value.length));
  return out;
}

/** One TLV whose value is `parts` back to back (e.g. a SEQUENCE of encoded elements), written once. */
export const tlvOf = (tag: number, parts: readonly Uint8Array[]): Uint8Array => encodeInto({ tag, children: parts }, fresh);

export const seq = (...items: Uint8Array[]): Uint8Array => tlvOf(TAG.SEQUENCE, items);

/** SET OF, with DER ordering of the encoded elements. */
export const setOf = (...items: Uint8Array[]): Uint8Array =>
  tlvOf(
    TAG.SET,
    [...items].sort((a, b) => Buffer.compare(a, b)),
  );

/** Context-specific tag [n]; constructed (explicit, or implicit over a constructed type) by default. */
export function ctx(num: number, value: Uint8Array, constructed = true): Uint8Array {
  return tlv(0x80 | (constructed ? 0x20 : 0) | num, value);
}

/** Explicit tagging: wraps an already-encoded element. */
export const explicit = (num: number, inner: Uint8Array): Uint8Array => ctx(num, inner, true);

/** Implicit tagging: replaces the tag of an already-encoded element. */
export function implicit(num: number, encoded: Uint8Array): Uint8Array {
  const n = parseDer(encoded);
  const constructed = (n.tag & 0x20) !== 0;
  return ctx(num, n.value, constructed);
}

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((x) => {
    if (!/^\d+$/.test(x)) throw new TypeError(`bad OID ${dotted}`);
    return Number(x);
  });
  if (arcs.length < 2) throw new TypeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: number) => {
    const tmp: number[] = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift((v & 0x7f) | 0x80);
    out.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.OID, Uint8Array.from(out));
}

const ZERO = Uint8Array.of(0);

/** INTEGER from an unsigned big-endian magnitude or a (non-negative) number/bigint. */
export function integer(v: Uint8Array | number | bigint): Uint8Array {
  let bytes: Uint8Array;
  if (v instanceof Uint8Array) {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    bytes = v.subarray(i);
    if (bytes.length === 0) bytes = Uint8Array.of(0);
  } else {
    let x = BigInt(v);
    if (x < 0n) throw new TypeError('negative INTEGER not supported');
    const arr: number[] = [];
    do {
      arr.unshift(Number(x & 0xffn));
      x >>= 8n;
    } while (x > 0n);
    bytes = Uint8Array.from(arr);
  }
  return bytes[0]! & 0x80 ? tlvOf(TAG.INTEGER, [ZERO, bytes]) : tlv(TAG.INTEGER, bytes);
}

export const bool = (v: boolean): Uint8Array => tlv(TAG.BOOLEAN, Uint8Array.of(v ? 0xff : 0));
export const nullValue = (): Uint8Array => Uint8Array.of(TAG.NULL, 0);
export const octetString = (v: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, v);
export const bitString = (v: Uint8Array, unusedBits = 0): Uint8Array => tlvOf(TAG.BIT_STRING, [Uint8Array.of(unusedBits), v]);
export const utf8String = (s: string): Uint8Array => tlv(TAG.UTF8_STRING, utf8(s));
export const printableString = (s: string): Uint8Array => tlv(TAG.PRINTABLE_STRING, utf8(s));
export const ia5String = (s: string): Uint8Array => tlv(TAG.IA5_STRING, utf8(s));

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** UTCTime for years 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
export function x509Time(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) {
    const s = `${pad(y % 100)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
    return tlv(TAG.UTC_TIME, utf8(s));
  }
  return generalizedTime(d, false);
}

/** GeneralizedTime, optionally with milliseconds (trailing zeros dropped, as DER requires). */
export function generalizedTime(d: Date, withMillis: boolean): Uint8Array {
  let s = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  if (withMillis && ms !== 0) s += `.${pad(ms, 3)}`.replace(/0+$/, '');
  return tlv(TAG.GENERALIZED_TIME, utf8(`${s}Z`));
}

/** Debug rendering of a DER tree (for tests and error messages). */
export function dumpDer(n: DerNode, indent = ''): string {
  const head = `${indent}0x${n.tag.toString(16)} len=${n.value.length}`;
  if (n.children.length) return [head, ...n.children.map((c) => dumpDer(c, `${indent}  `))].join('\n');
  return `${head} ${toHex(n.value.subarray(0, 32))}`;
}
