import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { throwsWithCode } from '@waxseal/testkit';
import { WaxsealError } from './errors.ts';
import { DEFAULT_JSON_MAX_DEPTH, JsonScanner, parseJsonBounded } from './json.ts';

const enc = new TextEncoder();
const big = { maxBytes: 1 << 30 };

/** Nesting depth of a parsed JSON value (a scalar is 0). */
function depthOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const kids = Array.isArray(v) ? v : Object.values(v);
  return 1 + kids.reduce((m: number, k) => Math.max(m, depthOf(k)), 0);
}

test('accepts JSON exactly as JSON.parse does, from text and from UTF-8 bytes', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
      const text = JSON.stringify(v);
      const want = JSON.parse(text) as unknown;
      const limits = { maxBytes: enc.encode(text).length, maxDepth: Math.max(depthOf(want), 1) };
      assert.deepEqual(parseJsonBounded(text, limits), want);
      assert.deepEqual(parseJsonBounded(enc.encode(text), limits), want);
    }),
    { numRuns: 300 },
  );
  // Pretty-printed and unicode text too.
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
      const text = JSON.stringify(v, null, 2);
      assert.deepEqual(parseJsonBounded(enc.encode(text), big), JSON.parse(text));
    }),
    { numRuns: 100 },
  );
});

test('the depth limit is exact, whatever the strings hold', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 10 }), (v) => {
      const text = JSON.stringify(v);
      const d = depthOf(v);
      parseJsonBounded(text, { ...big, maxDepth: d });
      if (d > 0) throwsWithCode(() => parseJsonBounded(enc.encode(text), { ...big, maxDepth: d - 1 }), 'ERR_INVALID_INPUT', /deeper/);
    }),
    { numRuns: 300 },
  );
  // Brackets, quotes and backslashes inside strings are not structure.
  const tricky = String.raw`["[[[[{{{{", "\"[[[[", "\\", "\\\"[[", {"k[{": "]]}}\\\\"}]`;
  assert.deepEqual(parseJsonBounded(tricky, { ...big, maxDepth: 2 }), JSON.parse(tricky));
  throwsWithCode(() => parseJsonBounded(tricky, { ...big, maxDepth: 1 }), 'ERR_INVALID_INPUT');
  // An escaped quote does not end the string; the bracket after the real end does count.
  throwsWithCode(() => parseJsonBounded(String.raw`["\"", [[]]]`, { ...big, maxDepth: 2 }), 'ERR_INVALID_INPUT');
  assert.equal(DEFAULT_JSON_MAX_DEPTH, 64);
  parseJsonBounded(`${'['.repeat(64)}${']'.repeat(64)}`, big);
  throwsWithCode(() => parseJsonBounded(`${'['.repeat(65)}${']'.repeat(65)}`, big), 'ERR_INVALID_INPUT', /deeper than 64/);
});

test('scanning in pieces gives the same verdict as scanning at once (escapes across pieces)', () => {
  const pieces = fc.array(fc.nat(), { maxLength: 6 });
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), pieces, (v, cuts) => {
      const bytes = enc.encode(JSON.stringify(v));
      const d = depthOf(v);
      const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const run = (maxDepth: number) => {
        const s = new JsonScanner({ ...big, maxDepth });
        let from = 0;
        for (const c of [...at, bytes.length]) {
          s.push(bytes.subarray(from, c));
          from = c;
        }
      };
      run(d);
      if (d > 0) throwsWithCode(() => run(d - 1), 'ERR_INVALID_INPUT');
    }),
    { numRuns: 300 },
  );
  // A backslash ending one piece escapes the first character of the next.
  const s = new JsonScanner({ ...big, maxDepth: 1 });
  s.push(enc.encode('["a\\'));
  s.push(enc.encode('"[[["]'));
});

test('4 MB of nesting is refused by the scan, before JSON.parse allocates it', () => {
  const n = 2_000_000;
  const bytes = new Uint8Array(2 * n);
  bytes.fill(0x5b, 0, n);
  bytes.fill(0x5d, n);
  throwsWithCode(() => parseJsonBounded(bytes, { maxBytes: 4 << 20 }), 'ERR_INVALID_INPUT', /deeper than 64/);
  const text = `${'{"a":'.repeat(n / 5)}1${'}'.repeat(n / 5)}`;
  throwsWithCode(() => parseJsonBounded(text, { maxBytes: 4 << 20, maxDepth: 100 }), 'ERR_INVALID_INPUT', /deeper than 100/);
});

test('size is refused before decoding, counted in UTF-8 bytes', () => {
  throwsWithCode(() => parseJsonBounded(enc.encode('[1,2,3]'), { maxBytes: 6 }), 'ERR_BODY_TOO_LARGE', /larger than 6 bytes/);
  throwsWithCode(() => parseJsonBounded('[1,2,3]', { maxBytes: 6 }), 'ERR_BODY_TOO_LARGE');
  // Three characters, nine bytes.
  throwsWithCode(() => parseJsonBounded('"€"', { maxBytes: 4 }), 'ERR_BODY_TOO_LARGE');
  assert.equal(parseJsonBounded('"€"', { maxBytes: 5 }), '€');
  assert.equal(parseJsonBounded('"😀"', { maxBytes: 6 }), '😀');
  throwsWithCode(() => parseJsonBounded('"😀"', { maxBytes: 5 }), 'ERR_BODY_TOO_LARGE');
  // Invalid UTF-8 would not have been parseable as text anyway: refused, not replaced.
  throwsWithCode(() => parseJsonBounded(Uint8Array.of(0x22, 0xff, 0x22), big), 'ERR_JSON_PARSE', /UTF-8/);
});

test('the value limit counts what JSON.parse would allocate', () => {
  assert.deepEqual(parseJsonBounded('[1,2,3]', { ...big, maxValues: 4 }), [1, 2, 3]);
  throwsWithCode(() => parseJsonBounded('[1,2,3]', { ...big, maxValues: 3 }), 'ERR_INVALID_INPUT', /more than 3 values/);
  throwsWithCode(() => parseJsonBounded(`[${'[],'.repeat(100)}[]]`, { ...big, maxValues: 100 }), 'ERR_INVALID_INPUT');
  // Commas inside strings are not separators.
  assert.deepEqual(parseJsonBounded('{"a":",,,,,"}', { ...big, maxValues: 2 }), { a: ',,,,,' });
});

test('bad JSON, the caller code, the reviver', () => {
  for (const bad of ['', '[', '{"a":}', '[1,]', ']', '\ufeff{}', '"\\x"', '{"a":1}}']) {
    throwsWithCode(() => parseJsonBounded(bad, big), 'ERR_JSON_PARSE', /JSON text is not valid JSON/);
  }
  throwsWithCode(
    () => parseJsonBounded('[', { ...big, code: 'ERR_BUNDLE_INVALID', what: 'bundle' }),
    'ERR_BUNDLE_INVALID',
    /^bundle is not/,
  );
  throwsWithCode(() => parseJsonBounded('[[1]]', { ...big, maxDepth: 1, code: 'ERR_BUNDLE_INVALID' }), 'ERR_BUNDLE_INVALID');
  throwsWithCode(() => parseJsonBounded('[1]', { maxBytes: 2, code: 'ERR_BUNDLE_INVALID' }), 'ERR_BUNDLE_INVALID');
  const seen: string[] = [];
  const v = parseJsonBounded('{"n": 123456789012345678901}', {
    ...big,
    reviver(key, value, context) {
      if (key === 'n') seen.push(String(context?.source));
      return value;
    },
  });
  assert.deepEqual(seen, ['123456789012345678901']);
  assert.equal(typeof (v as { n: unknown }).n, 'number');
  const e = throwsWithCode(
    () =>
      parseJsonBounded('{"n":1}', {
        ...big,
        reviver() {
          throw new WaxsealError('ERR_TSA_REQUEST', 'no');
        },
      }),
    'ERR_TSA_REQUEST',
  );
  assert.equal(e.message, 'no');
});
