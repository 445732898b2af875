import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { throwsWithCode } from '@waxseal/testkit';
import { matchingPolicies, selectorMatches } from './match.ts';
import { loadPolicyObjects, loadPolicyStore } from './store.ts';

const CIP = (name: string, glob: string, extra = '') => `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: ${name}
spec:
  images:
  - glob: "${glob}"
  authorities:
  - keyless:
      url: https://ca.example
      trustRootRef: keys
      identities:
      - issuer: https://idp.example
        subject: me@example.com
${extra}`;

test('multi-document YAML: kinds routed, generation and fingerprints follow the inputs', () => {
  const a = loadPolicyStore([
    { name: 'a.yaml', text: `${CIP('one', 'registry.local/**')}---\n${CIP('two', 'other.io/**')}` },
    { name: 'b.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n---\n' },
  ]);
  assert.deepEqual(
    a.clusterPolicies.map((p) => p.name),
    ['one', 'two'],
  );
  assert.match(a.warnings[0]!, /trustRootRef "keys" names no loaded TrustRoot/);
  const same = loadPolicyStore([
    { name: 'b.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n---\n' },
    { name: 'a.yaml', text: `${CIP('one', 'registry.local/**')}---\n${CIP('two', 'other.io/**')}` },
  ]);
  assert.equal(same.generation, a.generation);
  const edited = loadPolicyStore([
    { name: 'a.yaml', text: `${CIP('one', 'registry.local/**')}---\n${CIP('two', 'other.io/x/**')}` },
    { name: 'b.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n' },
  ]);
  assert.notEqual(edited.generation, a.generation);
  assert.equal(edited.fingerprints.get('ClusterImagePolicy/one'), a.fingerprints.get('ClusterImagePolicy/one'));
  assert.notEqual(edited.fingerprints.get('ClusterImagePolicy/two'), a.fingerprints.get('ClusterImagePolicy/two'));
});

test('bad documents are refused naming the file and the resource', () => {
  throwsWithCode(
    () => loadPolicyStore([{ name: 'x.yaml', text: 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n' }]),
    'ERR_INVALID_INPUT',
    /^x\.yaml: unknown resource type v1 Service \(s\)/,
  );
  throwsWithCode(
    () =>
      loadPolicyStore([{ name: 'x.yaml', text: 'apiVersion: policy.sigstore.dev/v1\nkind: ClusterImagePolicy\nmetadata: {name: s}\n' }]),
    'ERR_INVALID_INPUT',
    /apiVersion: must be policy\.sigstore\.dev\/v1alpha1 or v1beta1/,
  );
  throwsWithCode(() => loadPolicyStore([{ name: 'x.yaml', text: 'a: [\n' }]), 'ERR_INVALID_INPUT', /^x\.yaml: invalid YAML/);
  throwsWithCode(
    () => loadPolicyStore([{ name: 'x.yaml', text: `${CIP('one', '**')}---\n${CIP('one', '**')}` }]),
    'ERR_INVALID_INPUT',
    /duplicate ClusterImagePolicy named "one"/,
  );
  throwsWithCode(() => loadPolicyStore([{ name: 'x.yaml', text: '- 1\n- 2\n' }]), 'ERR_INVALID_INPUT', /must be a YAML mapping/);
  const e = throwsWithCode(() => loadPolicyStore([{ name: 'x.yaml', text: CIP('one', 'a b') }]), 'ERR_INVALID_INPUT');
  assert.match(e.message, /^x\.yaml: ClusterImagePolicy one: spec\.images\[0\]\.glob: glob is invalid/);
});

test('loadPolicyObjects: objects from the API, Secrets inline key.secretRef', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const store = loadPolicyObjects([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'k', namespace: 'cosign-system' },
      data: { 'cosign.pub': Buffer.from(pem).toString('base64') },
    },
    {
      apiVersion: 'policy.sigstore.dev/v1alpha1',
      kind: 'ClusterImagePolicy',
      metadata: { name: 'keyed', resourceVersion: '7', managedFields: [] },
      spec: { images: [{ glob: '**' }], authorities: [{ key: { secretRef: { name: 'k' } } }] },
      status: { conditions: [] },
    },
  ]);
  assert.equal(store.clusterPolicies[0]!.spec.authorities[0]!.key!.data, pem);
  const e = throwsWithCode(
    () =>
      loadPolicyObjects([
        {
          apiVersion: 'policy.sigstore.dev/v1alpha1',
          kind: 'ClusterImagePolicy',
          metadata: { name: 'bad' },
          spec: { images: [{ glob: '**' }] },
        },
      ]),
    'ERR_INVALID_INPUT',
  );
  assert.equal(e.message, 'from the Kubernetes API: ClusterImagePolicy bad: spec.authorities: missing field');
});

test('matching: globs, match resources and selectors, namespaced ImagePolicies', () => {
  const store = loadPolicyStore([
    {
      name: 'p.yaml',
      text: `${CIP('all', 'registry.local/**')}---
${CIP(
  'deploys',
  'registry.local/**',
  `  match:
  - group: apps
    version: v1
    resource: deployments
    selector:
      matchExpressions:
      - {key: tier, operator: In, values: [prod]}
`,
)}---
apiVersion: policy.waxseal.dev/v1alpha1
kind: ImagePolicy
metadata: {name: team-only, namespace: team}
spec:
  images: [{glob: "registry.local/**"}]
  authorities: [{static: {action: pass}}]
`,
    },
  ]);
  const names = (t: Parameters<typeof matchingPolicies>[1]) => matchingPolicies(store, t).map((p) => p.name);
  const img = 'registry.local/app:v1';
  assert.deepEqual(names({ image: img, namespace: 'default', kind: 'Pod', labels: {} }), ['all']);
  assert.deepEqual(names({ image: img, namespace: 'default', kind: 'Deployment', labels: { tier: 'prod' } }), ['all', 'deploys']);
  assert.deepEqual(names({ image: img, namespace: 'default', kind: 'Deployment', labels: { tier: 'dev' } }), ['all']);
  assert.deepEqual(names({ image: img, namespace: 'team', kind: 'Pod', labels: {} }), ['all', 'team-only']);
  assert.deepEqual(names({ image: 'other.io/app', namespace: 'team', kind: 'Pod', labels: {} }), []);
  assert.equal(selectorMatches({ matchLabels: {}, matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}), true);
  assert.equal(
    selectorMatches({ matchLabels: {}, matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: [] }] }, { a: '1' }),
    false,
  );
  assert.equal(
    selectorMatches({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists', values: [] }] }, { a: '1', b: '' }),
    true,
  );
});
