// Waxseal issue 15 item 6: fields of a bundle that no signature covers are never reported as
// facts. A Rekor v1 entry's top-level logIndex and integratedTime are covered only by its SET;
// without one, the verified index is the one its inclusion proof proves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBundleJson } from '../../bundle/src/index.ts';
import { Verifier } from '../src/index.ts';
import { vectorsPresent, SKIP_MESSAGE, loadCase, trustedRootOf } from './vectors/load.ts';

if (!vectorsPresent()) {
  test('unsigned bundle fields', { skip: SKIP_MESSAGE }, () => {});
} else {
  // Rekor v1 with a SET, an inclusion proof and an RFC 3161 timestamp.
  const c = loadCase('java-rekor-v1-tsa-staging');
  const verify = (edit: (b: Record<string, any>) => void) => {
    const json = JSON.parse(c.bundleText) as Record<string, any>;
    edit(json);
    return new Verifier(trustedRootOf(c), c.options).verify(parseBundleJson(JSON.stringify(json)), c.artifact, c.policy);
  };

  test('with a SET, the signed log index and integrated time are reported', () => {
    const [e] = verify(() => {}).tlogEntries;
    assert.equal(e!.logIndex, 42526129);
    assert.ok(e!.integratedTime);
    assert.deepEqual(e!.unverified, []);
  });

  test('without a SET, an edited top-level logIndex is not reported; the proven index is', () => {
    const r = verify((b) => {
      const entry = b.verificationMaterial.tlogEntries[0];
      delete entry.inclusionPromise;
      entry.logIndex = '123';
    });
    const [e] = r.tlogEntries;
    assert.notEqual(e!.logIndex, 123, 'the unsigned index is never reported');
    assert.equal(e!.logIndex, Number(JSON.parse(c.bundleText).verificationMaterial.tlogEntries[0].inclusionProof.logIndex));
    assert.equal(e!.integratedTime, undefined);
    assert.deepEqual(e!.unverified, ['integratedTime']);
  });
}
