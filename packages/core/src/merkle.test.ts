import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  leafHash,
  rootFromLeafHashes,
  inclusionProof,
  verifyInclusion,
  consistencyProof,
  verifyConsistency,
  EMPTY_ROOT,
} from './merkle.ts';
import { toHex } from './bytes.ts';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));

test('RFC 6962 known answers', () => {
  assert.equal(toHex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(toHex(leafHash(new Uint8Array(0))), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
});

test('property: every inclusion proof verifies and a wrong index does not', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), (n, r) => {
      const l = leaves(n);
      const root = rootFromLeafHashes(l);
      const i = r % n;
      const proof = inclusionProof(i, l);
      assert.ok(verifyInclusion(i, n, l[i]!, proof, root));
      if (n > 1) assert.ok(!verifyInclusion((i + 1) % n, n, l[i]!, proof, root));
      if (proof.length) assert.ok(!verifyInclusion(i, n, l[i]!, proof.slice(1), root));
    }),
    { numRuns: 200 },
  );
});

test('property: consistency proofs verify between every pair of sizes and fail when tampered', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), (n, r) => {
      const l = leaves(n);
      const m = 1 + (r % n);
      const proof = consistencyProof(m, l);
      const r1 = rootFromLeafHashes(l.slice(0, m));
      const r2 = rootFromLeafHashes(l);
      assert.ok(verifyConsistency(m, n, r1, r2, proof));
      if (m < n) assert.ok(!verifyConsistency(m, n, r2, r2, proof));
      if (proof.length) {
        const t = proof.map((p) => p.slice());
        t[0]![0]! ^= 1;
        assert.ok(!verifyConsistency(m, n, r1, r2, t));
      }
    }),
    { numRuns: 200 },
  );
});
