import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { canonicalJson } from './canonical.ts';

// The reference encoder tuf-js verifies signatures against (a dependency of tuf-js; untyped).
const require = createRequire(import.meta.url);
const reference = require('@tufjs/canonical-json') as { canonicalize(v: unknown): string };

test('canonical JSON: sorted keys, no whitespace, only backslash and quote escaped', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'] }), '{"a":[true,null,"x"],"b":1}');
  // Control characters and non-ASCII are written raw (OLPC), unlike JSON.stringify / RFC 8785.
  assert.equal(canonicalJson('a"b\\c\n\u0001é'), '"a\\"b\\\\c\n\u0001é"');
  assert.equal(canonicalJson({ '\u00e9': 1, z: 2, A: 3 }), '{"A":3,"z":2,"é":1}');
});

test('canonical JSON refuses floats, non-finite numbers and undefined members', () => {
  assert.throws(() => canonicalJson({ v: 1.5 }), /only integers/);
  assert.throws(() => canonicalJson(NaN), /only integers/);
  assert.throws(() => canonicalJson({ v: undefined }), /undefined/);
  assert.throws(() => canonicalJson(() => 1), /cannot encode/);
});

test('canonical JSON is byte-identical to @tufjs/canonical-json on arbitrary integer JSON', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string({ unit: 'binary' }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('value'), { maxKeys: 4 }),
    ),
  })).value;
  fc.assert(
    fc.property(json, (v) => canonicalJson(v) === reference.canonicalize(v)),
    { numRuns: 300 },
  );
});
