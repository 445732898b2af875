// The CRD schemas (what the API server admits) and the policy loader of @waxseal/policy (what the
// webhook enforces) must agree: whatever the CRDs reject the loader rejects too, and the
// policies the CRDs accept load, except where the loader knowingly refuses more (CUE and Rego
// without an evaluator, remote policies, key material that does not parse), which a schema
// cannot express. The seed's TrustRoot gets real certificate chains, made with openssl.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { keylessClusterImagePolicy, loadPolicyObjects } from '@waxseal/policy';
import { CRD_DIRS, crdFiles } from '../../deploy/crds/generate.ts';
import { EXAMPLE_SPECS, MALFORMED_CIPS, MALFORMED_TRUST_ROOTS, resource } from './examples.ts';
import { CrdSet, type Obj, REPO, readYaml, yamlDocs } from './k8s.ts';
import { seedWithRealChains } from './pki.ts';

const set = new CrdSet(Object.keys(crdFiles()).flatMap((f) => readYaml(join(REPO, CRD_DIRS[0]!, f))));

const loads = (objs: Obj[]): string | undefined => {
  try {
    loadPolicyObjects(objs);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

test("the seed's ClusterImagePolicy and TrustRoot (real chains): the CRDs accept them and the loader loads them", () => {
  const seed = seedWithRealChains();
  for (const o of seed) assert.deepEqual(set.validate(o).errors, [], String(o['kind']));
  assert.equal(loads(seed), undefined);
  // The policy `waxseal policy trustroot --cluster-image-policy` prints is the same shape.
  const printed = keylessClusterImagePolicy({
    name: 'waxseal-signed-keyless',
    trustRootName: 'waxseal-dev',
    url: 'https://waxseal.example.com',
    glob: 'registry.example.com/**',
    identity: 'dev@waxseal.test',
    issuer: 'https://waxseal.example.com/oidc',
  }) as Obj;
  const r = set.validate(printed);
  assert.deepEqual([r.errors, r.pruned], [[], []]);
  assert.equal(loads([printed, seed[1]!]), undefined);
});

// What the loader refuses beyond the schema, by example (a message fragment each).
const LOADER_REFUSES: Record<string, string[]> = {
  'key from a KMS and from a Secret, sources with pull secrets': ['secret release-key'],
  'attestations with a predicate policy (CEL, CUE and Rego)': [
    'not a PEM public key',
    'cue policies cannot be evaluated',
    'rego policies cannot be evaluated',
  ],
  'remote policy pinned by digest': ['rego policies cannot be evaluated'],
};

test("policy-controller's examples: accepted by the CRDs; loaded, or refused for a reason no schema can state", () => {
  const trustRoot = seedWithRealChains()[1]!;
  for (const [name, spec] of Object.entries(EXAMPLE_SPECS)) {
    const cip = resource('policy.sigstore.dev/v1beta1', 'ClusterImagePolicy', 'example', spec);
    assert.deepEqual(set.validate(cip).errors, [], name);
    // The examples' trustRootRef is private-sigstore; a Secret the key's secretRef names is
    // there, holding something that is not a key.
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'release-key', namespace: 'waxseal-system' },
      stringData: { key: 'x' },
    };
    const err = loads([cip, { ...trustRoot, metadata: { name: 'private-sigstore' } }, secret]);
    const expected = LOADER_REFUSES[name];
    if (!expected) assert.equal(err, undefined, name);
    else for (const fragment of expected) assert.ok(err?.includes(fragment), `${name}: expected ${fragment} in ${err}`);
  }
});

test('whatever the CRDs reject, the loader rejects too', () => {
  for (const [what, spec] of MALFORMED_CIPS) {
    const cip = resource('policy.sigstore.dev/v1beta1', 'ClusterImagePolicy', 'bad', spec);
    assert.equal(set.validate(cip).ok, false, what);
    assert.notEqual(loads([cip]), undefined, `the loader accepted: ${what}`);
  }
  for (const [what, body] of MALFORMED_TRUST_ROOTS) {
    const tr = {
      apiVersion: 'policy.sigstore.dev/v1alpha1',
      kind: 'TrustRoot',
      metadata: { name: 'bad' },
      ...(body === '' ? {} : yamlDocs(body, what)[0]),
    };
    assert.equal(set.validate(tr).ok, false, what);
    assert.notEqual(loads([tr]), undefined, `the loader accepted the TrustRoot: ${what}`);
  }
});
