// Cross-check with sigstore-js (@sigstore/verify): for every vector sigstore-js can run
// in-process, both verifiers reach the same outcome, except where the vectors' README records a
// sigstore-js limitation or a deliberate difference (listed below with the reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vectorsPresent, SKIP_MESSAGE, loadCases, runCase } from './load.ts';
import { jsCanRun, jsRunner } from './sigstore-js.ts';

/** Cases where sigstore-js 4.1.x and Waxseal legitimately differ. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  'go-v0.3-othername-san-scaffolding':
    'sigstore-js requires the checkpoint signer name to appear in the log baseUrl and cannot read otherName SANs; Waxseal verifies it (expected ok)',
  'java-invalid-rekor-v2-dsse-entry-type':
    'sigstore-js still accepts Rekor v2 dsse 0.0.2 entries; Waxseal fails closed on that removed entry type (expected fail)',
  'py-rekor-v1-plus-tsa-local-test-tsa':
    'sigstore-js rejects a bundle when any RFC 3161 timestamp does not verify; Waxseal ignores such timestamps and counts verified ones (expected ok)',
};

if (!vectorsPresent()) {
  test('sigstore-js cross-check', { skip: SKIP_MESSAGE }, () => {});
} else {
  const cases = loadCases().filter(jsCanRun);

  test('sigstore-js can run most vectors in-process', () => {
    assert.ok(cases.length >= 65, `only ${cases.length} cases`);
  });

  for (const c of cases) {
    test(`sigstore-js agrees on ${c.id}`, () => {
      // DSSE known by digest only: both verify the envelope alone (sigstore-js has no digest mode).
      const envelopeOnly = c.artifact !== undefined && 'digest' in c.artifact;
      let js: boolean;
      try {
        jsRunner(c).verify();
        js = true;
      } catch {
        js = false;
      }
      const ours = (envelopeOnly ? runCase(c, { artifact: undefined }) : runCase(c)).ok;
      if (KNOWN_DIFFERENCES[c.id]) {
        assert.notEqual(ours, js, `listed as a difference but both say ${ours ? 'ok' : 'fail'}: ${KNOWN_DIFFERENCES[c.id]}`);
        return;
      }
      assert.equal(ours, js, `Waxseal ${ours ? 'verifies' : 'rejects'}, sigstore-js ${js ? 'verifies' : 'rejects'}`);
    });
  }
}
