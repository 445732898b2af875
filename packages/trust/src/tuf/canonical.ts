// The canonical JSON that TUF signs: OLPC canonical JSON as implemented by securesystemslib
// (python-tuf), go-securesystemslib (go-tuf) and @tufjs/canonical-json (tuf-js). It is NOT RFC 8785:
// object keys sort by UTF-16 code units (JavaScript's default sort, which tuf-js uses), strings
// escape only `\` and `"` (every other character, control characters included, is written raw
// as UTF-8), there is no whitespace, and only integers are allowed (no floats at all).
import { WaxsealError, utf8 } from '@waxseal/core';

function encodeString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return encodeString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new WaxsealError('ERR_INVALID_INPUT', `TUF canonical JSON allows only integers, got ${value}`);
    }
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    const parts: string[] = [];
    for (const k of keys) {
      // undefined members are not JSON; refuse rather than silently sign something else.
      if (obj[k] === undefined) throw new WaxsealError('ERR_INVALID_INPUT', `TUF canonical JSON: member ${JSON.stringify(k)} is undefined`);
      parts.push(`${encodeString(k)}:${canonicalJson(obj[k])}`);
    }
    return `{${parts.join(',')}}`;
  }
  throw new WaxsealError('ERR_INVALID_INPUT', `TUF canonical JSON cannot encode a ${typeof value}`);
}

export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}
