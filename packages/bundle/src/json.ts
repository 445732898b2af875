// Strict readers for protobuf JSON (proto3 canonical JSON) as Sigstore documents use it:
// lowerCamelCase keys with the original snake_case accepted too, bytes as padded standard
// base64, 64-bit integers as decimal strings (numbers accepted), enums by name, Timestamps in
// RFC 3339. Every failure names the offending field and carries the caller's error code.
import { WaxsealError, parseJsonBounded, type ErrorCode } from '@waxseal/core';

export type JsonObject = Record<string, unknown>;

/** Where we are in a document: the error code to throw and the field path for messages. */
export interface Where {
  code: ErrorCode;
  path: string;
}

export function at(w: Where, field: string | number): Where {
  return { code: w.code, path: typeof field === 'number' ? `${w.path}[${field}]` : w.path ? `${w.path}.${field}` : field };
}

export function invalid(w: Where, message: string): never {
  throw new WaxsealError(w.code, `${w.path || 'document'}: ${message}`, { detail: { field: w.path } });
}

const snakeNames = new Map<string, string>();

export function snakeCase(camel: string): string {
  let s = snakeNames.get(camel);
  if (s === undefined) {
    s = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (snakeNames.size < 1024) snakeNames.set(camel, s);
  }
  return s;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asObject(v: unknown, w: Where): JsonObject {
  if (!isObject(v)) invalid(w, 'must be a JSON object');
  return v;
}

/**
 * The value of a field under its camelCase or snake_case name. JSON null means "absent"
 * (protojson treats null as the default value). Both spellings at once is ambiguous: rejected.
 */
export function field(obj: JsonObject, camel: string, w: Where): unknown {
  const snake = snakeCase(camel);
  const hasCamel = Object.hasOwn(obj, camel);
  const hasSnake = snake !== camel && Object.hasOwn(obj, snake);
  if (hasCamel && hasSnake) invalid(at(w, camel), `given both as ${camel} and ${snake}`);
  const v = hasCamel ? obj[camel] : hasSnake ? obj[snake] : undefined;
  return v === null ? undefined : v;
}

export function optObject(obj: JsonObject, camel: string, w: Where): JsonObject | undefined {
  const v = field(obj, camel, w);
  return v === undefined ? undefined : asObject(v, at(w, camel));
}

export function reqObject(obj: JsonObject, camel: string, w: Where): JsonObject {
  const v = optObject(obj, camel, w);
  if (v === undefined) invalid(at(w, camel), 'is required');
  return v;
}

export function optString(obj: JsonObject, camel: string, w: Where): string | undefined {
  const v = field(obj, camel, w);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') invalid(at(w, camel), 'must be a string');
  return v;
}

export function reqString(obj: JsonObject, camel: string, w: Where): string {
  const v = optString(obj, camel, w);
  if (v === undefined || v === '') invalid(at(w, camel), 'is required');
  return v;
}

export function optArray(obj: JsonObject, camel: string, w: Where, max: number): unknown[] {
  const v = field(obj, camel, w);
  if (v === undefined) return [];
  if (!Array.isArray(v)) invalid(at(w, camel), 'must be an array');
  if (v.length > max) invalid(at(w, camel), `has ${v.length} items; at most ${max} are accepted`);
  return v;
}

const B64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Padded standard base64 in its canonical form (no stray bits in the last character). */
export function decodeBase64Strict(input: unknown, w: Where, maxBytes: number): Uint8Array {
  if (typeof input !== 'string') invalid(w, 'must be a base64 string');
  let s: string = input;
  // Line breaks are skipped, as Go's decoder (sigstore-go, protojson) does: bundles built with
  // `base64` from coreutils carry them.
  if (s.includes('\n') || s.includes('\r')) s = s.replace(/\r?\n|\r/g, '');
  if (s.length > Math.ceil(maxBytes / 3) * 4) invalid(w, `is larger than ${maxBytes} bytes`);
  if (!B64_STD.test(s)) invalid(w, 'is not padded standard base64');
  // Canonical: the bits the padding leaves unused in the last character are zero.
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  if (pad > 0 && B64_ALPHABET.indexOf(s[s.length - pad - 1]!) & (pad === 2 ? 0x0f : 0x03)) invalid(w, 'is not canonical base64');
  // A copy: Buffer.from may hand out a slice of a shared pool.
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function optBytes(obj: JsonObject, camel: string, w: Where, maxBytes: number): Uint8Array | undefined {
  const v = field(obj, camel, w);
  if (v === undefined) return undefined;
  return decodeBase64Strict(v, at(w, camel), maxBytes);
}

/** Required, non-empty bytes. */
export function reqBytes(obj: JsonObject, camel: string, w: Where, maxBytes: number): Uint8Array {
  const v = optBytes(obj, camel, w, maxBytes);
  if (v === undefined || v.length === 0) invalid(at(w, camel), 'is required');
  return v;
}

/**
 * An int64/uint64 field: a decimal string (proto3 JSON) or a JSON integer. Values must be
 * non-negative and exactly representable as a JS number (< 2^53): larger tree sizes or indexes
 * do not occur and would lose precision, so they are rejected rather than rounded.
 */
export function optInt64(obj: JsonObject, camel: string, w: Where): number | undefined {
  const v = field(obj, camel, w);
  if (v === undefined) return undefined;
  const fw = at(w, camel);
  let n: number;
  if (typeof v === 'string') {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) invalid(fw, 'must be a non-negative decimal integer string');
    n = Number(v);
  } else if (typeof v === 'number') {
    n = v;
  } else {
    invalid(fw, 'must be an integer (string or number)');
  }
  if (!Number.isSafeInteger(n) || n < 0) invalid(fw, 'must be a non-negative integer below 2^53');
  return n;
}

export function reqInt64(obj: JsonObject, camel: string, w: Where): number {
  const v = optInt64(obj, camel, w);
  if (v === undefined) invalid(at(w, camel), 'is required');
  return v;
}

/** A uint32/int32 field (JSON number, or a decimal string as protojson also accepts). */
export function optInt32(obj: JsonObject, camel: string, w: Where): number | undefined {
  const v = optInt64(obj, camel, w);
  if (v !== undefined && v > 0xffffffff) invalid(at(w, camel), 'is out of range');
  return v;
}

/** protobuf-specs HashAlgorithm names, in enum-number order. */
const HASH_ALGORITHM_NAMES = ['HASH_ALGORITHM_UNSPECIFIED', 'SHA2_256', 'SHA2_384', 'SHA2_512', 'SHA3_256', 'SHA3_384'] as const;
export type HashAlgorithmName = (typeof HASH_ALGORITHM_NAMES)[number];
const HASH_ALGORITHM_BY_NUMBER: Record<number, HashAlgorithmName> = { ...HASH_ALGORITHM_NAMES };

/** A HashAlgorithm enum field, by name or number. */
export function optHashAlgorithm(obj: JsonObject, camel: string, w: Where): HashAlgorithmName | undefined {
  return optEnum(obj, camel, w, HASH_ALGORITHM_NAMES, HASH_ALGORITHM_BY_NUMBER);
}

/** An enum field given by name (numbers are mapped through `byNumber`). */
export function optEnum<T extends string>(
  obj: JsonObject,
  camel: string,
  w: Where,
  names: readonly T[],
  byNumber?: Record<number, T>,
): T | undefined {
  const v = field(obj, camel, w);
  if (v === undefined) return undefined;
  if (typeof v === 'number' && byNumber && Object.hasOwn(byNumber, v)) return byNumber[v];
  if (typeof v !== 'string' || !(names as readonly string[]).includes(v)) {
    invalid(at(w, camel), `unknown value ${JSON.stringify(v)?.slice(0, 80)}`);
  }
  return v as T;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * google.protobuf.Timestamp in RFC 3339. JS Dates hold milliseconds, so a finer fraction is
 * rounded down (`floor`, for window starts) or up (`ceil`, for window ends): the window never
 * shrinks by the rounding.
 */
export function parseTimestamp(s: unknown, w: Where, round: 'floor' | 'ceil' = 'floor'): Date {
  if (typeof s !== 'string') invalid(w, 'must be an RFC 3339 timestamp string');
  const m = RFC3339.exec(s);
  if (!m) invalid(w, `is not an RFC 3339 timestamp: ${JSON.stringify(s.slice(0, 40))}`);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  if (month! < 1 || month! > 12 || day! < 1 || day! > 31 || hour! > 23 || minute! > 59 || second! > 59)
    invalid(w, 'has an out-of-range field');
  const frac = (m[7] ?? '').padEnd(9, '0');
  let ms = Number(frac.slice(0, 3));
  if (round === 'ceil' && Number(frac.slice(3)) > 0) ms += 1;
  let t = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!, 0);
  const check = new Date(t);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month! - 1) invalid(w, 'is not a valid calendar date');
  t += ms;
  if (m[9]) {
    const offset = (Number(m[10]) * 60 + Number(m[11])) * 60_000;
    t += m[9] === '+' ? -offset : offset;
  }
  if (!Number.isFinite(t)) invalid(w, 'is out of range');
  return new Date(t);
}

/** RFC 3339 as protojson writes it (UTC, 'Z'; milliseconds only when non-zero). */
export function formatTimestamp(d: Date): string {
  const iso = d.toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

/** JSON text or UTF-8 bytes through the bounded parse (size, nesting), every refusal with our error code. */
export function parseJsonText(input: string | Uint8Array, code: ErrorCode, what: string, maxBytes: number): unknown {
  return parseJsonBounded(input, { maxBytes, code, what });
}
