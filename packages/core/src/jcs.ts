// RFC 8785 JSON Canonicalization Scheme: keys sorted by UTF-16 code units, no whitespace,
// ES6 number serialisation (which JSON.stringify already implements for finite numbers).
import { WaxsealError } from './errors.ts';
import { utf8 } from './bytes.ts';

export function canonicalize(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new WaxsealError('ERR_INVALID_INPUT', 'JCS cannot encode a non-finite number');
    return JSON.stringify(value);
  }
  // Array.from visits holes too (as undefined, written null like JSON.stringify); map would skip them.
  if (Array.isArray(value)) return `[${Array.from(value, (v) => canonicalize(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(obj[k])}`).join(',')}}`;
  }
  throw new WaxsealError('ERR_INVALID_INPUT', `JCS cannot encode a ${typeof value}`);
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}
