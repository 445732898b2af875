import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { throwsWithCode } from '@waxseal/testkit';
import { celAllows, compileCel, evaluateCel, MAX_CEL_SOURCE } from './cel.ts';

const provenance = {
  predicateType: 'https://slsa.dev/provenance/v1',
  subject: [{ name: 'registry.local/app', digest: { sha256: 'ab'.repeat(32) } }],
  predicate: {
    buildDefinition: { buildType: 'https://example.com/build@v1', externalParameters: { ref: 'refs/heads/main' } },
    runDetails: { builder: { id: 'https://ci.example.com/builder' } },
    count: 3,
    tags: ['a', 'b'],
  },
};

test('compileCel + celAllows: a policy over an attestation allows and denies', () => {
  const p = compileCel(
    `predicateType == 'https://slsa.dev/provenance/v1' && predicate.runDetails.builder.id.startsWith('https://ci.example.com/')`,
    'policy.cel',
  );
  assert.deepEqual(celAllows(p, provenance), { ok: true });
  const other = { ...provenance, predicate: { ...provenance.predicate, runDetails: { builder: { id: 'https://evil.example/' } } } };
  const r = celAllows(p, other);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /policy\.cel: CEL expression evaluated to false/);
});

test('JSON numbers compare with int and double literals; lists, maps, macros, has()', () => {
  const yes = [
    'predicate.count == 3',
    'predicate.count == 3.0',
    'predicate.count > 2',
    "predicate.tags.exists(t, t == 'b')",
    'predicate.tags.all(t, size(t) == 1)',
    'size(subject) == 1',
    "subject[0].digest.sha256.matches('^(ab)+$')",
    'has(predicate.buildDefinition.externalParameters)',
    '!has(predicate.missing)',
    "'ref' in predicate.buildDefinition.externalParameters",
    "predicate.buildDefinition.externalParameters.ref.endsWith('/main')",
    // strings extension
    "predicate.buildDefinition.buildType.indexOf('example') == 8",
  ];
  for (const src of yes) assert.deepEqual(celAllows(compileCel(src, 'x'), provenance), { ok: true }, src);
});

test('evaluateCel returns plain JS values', () => {
  assert.equal(evaluateCel(compileCel('1 + 2', 'x'), {}), 3n);
  assert.equal(evaluateCel(compileCel('"a" + "b"', 'x'), {}), 'ab');
  assert.deepEqual(evaluateCel(compileCel('predicate.tags', 'x'), provenance), ['a', 'b']);
  assert.deepEqual(evaluateCel(compileCel('{"k": [1, 2u, 2.5, null, true]}', 'x'), {}), { k: [1n, 2n, 2.5, null, true] });
  assert.deepEqual(evaluateCel(compileCel('{1: "one"}', 'x'), {}), new Map([[1n, 'one']]));
  assert.equal(evaluateCel(compileCel('v', 'x'), { v: 7n }), 7n);
});

test('a syntax error is ERR_INVALID_INPUT with check policy.cel, one line, naming the source', () => {
  for (const src of ['a +', "predicate == 'x", '(((', 'a b', '', '   \n ', 'x'.repeat(MAX_CEL_SOURCE + 1)]) {
    const e = throwsWithCode(() => compileCel(src, 'my-policy.cel'), 'ERR_INVALID_INPUT', {
      check: 'policy.cel',
      message: /^my-policy\.cel: invalid CEL expression: /,
    });
    assert.doesNotMatch(e.message, /\n/);
  }
});

test('an evaluation error throws from evaluateCel and is a denial with the reason in celAllows', () => {
  const cases: [string, RegExp][] = [
    ['predicate.nope.deeper', /field not found|no such key/],
    ['unbound == 1', /unresolved|undeclared|unbound/],
    ['predicate.count + 1', /overload/],
    ['1 / 0', /divide by zero/],
    ["'x'.matches('(?=a)')", /regexp|lookaround|invalid/i],
  ];
  for (const [src, why] of cases) {
    const p = compileCel(src, 'p.cel');
    throwsWithCode(() => evaluateCel(p, provenance), 'ERR_INVALID_INPUT', { check: 'policy.cel', message: why });
    const r = celAllows(p, provenance);
    assert.equal(r.ok, false, src);
    assert.match(!r.ok ? r.reason : '', /^p\.cel: CEL evaluation failed: /);
  }
});

test('a non-boolean result is a denial naming what it got', () => {
  const cases: [string, RegExp][] = [
    ['predicateType', /got string "https:\/\/slsa\.dev/],
    ['1', /got int 1/],
    ['predicate.tags', /got a list/],
    ['predicate', /got a map/],
    ['null', /got null/],
    ['2.5', /got number 2\.5/],
  ];
  for (const [src, why] of cases) {
    const r = celAllows(compileCel(src, 'p'), provenance);
    assert.equal(r.ok, false, src);
    assert.match(!r.ok ? r.reason : '', why, src);
    assert.match(!r.ok ? r.reason : '', /must evaluate to a bool/, src);
  }
});

test('a compiled program is reusable across bindings', () => {
  const p = compileCel('predicate.count >= min', 'p');
  assert.deepEqual(celAllows(p, { predicate: { count: 3 }, min: 2 }), { ok: true });
  assert.equal(celAllows(p, { predicate: { count: 1 }, min: 2 }).ok, false);
  assert.deepEqual(celAllows(p, { predicate: { count: 5 }, min: 5 }), { ok: true });
});

test('any expression text and any JSON bindings: compileCel throws only WaxsealError, celAllows never throws', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 3 }), (src, predicate) => {
      let p: ReturnType<typeof compileCel>;
      try {
        p = compileCel(src, 'fuzz');
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'ERR_INVALID_INPUT');
        return;
      }
      const r = celAllows(p, { predicate, predicateType: 't', subject: [] });
      assert.ok(r.ok === true || typeof r.reason === 'string');
    }),
    { numRuns: 500 },
  );
});
