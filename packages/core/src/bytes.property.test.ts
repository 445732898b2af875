// fromBase64's fast path (decode, re-encode, compare) against the strict check it stands in front
// of: on any text, both accept with the same bytes or both refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostileText } from '@waxseal/testkit';
import { fromBase64, toBase64 } from './bytes.ts';

/** The check alone, as fromBase64 was before its fast path. */
function reference(s: string): Uint8Array | 'refused' {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) return 'refused';
  return new Uint8Array(Buffer.from(s, 'base64'));
}
const attempt = (s: string): Uint8Array | 'refused' => {
  try {
    return fromBase64(s);
  } catch {
    return 'refused';
  }
};

// Valid encodings with characters inserted, replaced or dropped (padding too): Node's decoder
// skips what it cannot read, so only an exact re-encoding may take the fast path.
const seeds = fc.sample(fc.uint8Array({ maxLength: 40 }), { numRuns: 30, seed: 5 }).map(toBase64);
const near = hostileText(seeds, ['_', '*', '\u00a0']);

test('property: fromBase64 accepts and decodes exactly what the strict alphabet check does', () => {
  fc.assert(
    fc.property(fc.oneof(near, fc.string({ maxLength: 24 }), fc.base64String({ maxLength: 40 })), (s) => {
      assert.deepEqual(attempt(s), reference(s), JSON.stringify(s));
    }),
    { numRuns: 5000 },
  );
  // Unpadded and non-canonical final bits: not the fast path's, still accepted as before.
  assert.deepEqual(fromBase64('QQ'), new Uint8Array([0x41]));
  assert.deepEqual(fromBase64('QR=='), new Uint8Array([0x41]));
  assert.throws(() => fromBase64('QU-D'), /not valid base64/);
});
