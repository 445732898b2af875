// JCS (RFC 8785) is an encoder only (JSON.parse reads it back), so its canonical-encoding
// property is: every serialisation of a value (key order, whitespace) canonicalizes to the same
// text, that text is a fixed point, and what JSON cannot carry is refused with a WaxsealError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseOrRefuse, throwsWithCode } from '@waxseal/testkit';
import { canonicalize } from './jcs.ts';

/** The same JSON value re-serialised with its object keys in another order and other whitespace. */
function reserialise(v: unknown, seed: number, indent: number): string {
  const shuffle = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(shuffle);
    if (x === null || typeof x !== 'object') return x;
    const entries = Object.entries(x as Record<string, unknown>);
    const r = entries.length ? seed % entries.length : 0;
    const order = [...entries.slice(r), ...entries.slice(0, r)];
    if (seed & 1) order.reverse();
    const out: Record<string, unknown> = {};
    for (const [k, val] of order)
      Object.defineProperty(out, k, { value: shuffle(val), enumerable: true, writable: true, configurable: true });
    return out;
  };
  return JSON.stringify(shuffle(v), null, indent);
}

test('property: canonical JSON is a fixed point and independent of key order and whitespace', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat(), fc.integer({ min: 0, max: 4 }), (v, seed, indent) => {
      const c = canonicalize(v);
      assert.equal(canonicalize(JSON.parse(c)), c);
      assert.equal(canonicalize(JSON.parse(reserialise(v, seed, indent))), c);
      // No whitespace outside strings, and it is JSON for the same value.
      assert.deepEqual(JSON.parse(c), JSON.parse(JSON.stringify(v)));
    }),
    { numRuns: 1000 },
  );
});

test('property: any JavaScript value is canonicalized or refused with a WaxsealError', () => {
  fc.assert(
    fc.property(
      fc.anything({
        withBigInt: true,
        withMap: true,
        withSet: true,
        withDate: true,
        withTypedArray: true,
        withNullPrototype: true,
        withSparseArray: true,
      }),
      (v) => {
        const c = parseOrRefuse(() => canonicalize(v));
        if (c !== undefined) assert.equal(canonicalize(JSON.parse(c)), c);
      },
    ),
    { numRuns: 1000 },
  );
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -Infinity])
    throwsWithCode(() => canonicalize({ a: [bad] }), 'ERR_INVALID_INPUT', /non-finite/);
  throwsWithCode(() => canonicalize(Symbol('s')), 'ERR_INVALID_INPUT', /symbol/);
  // Holes are null, as in JSON.stringify (an array map() would skip them and write "[,,1]").
  const holes: unknown[] = [];
  holes[2] = 1;
  assert.equal(canonicalize(holes), '[null,null,1]');
});
