// The CustomResourceDefinitions: structural, in sync with their generator, accepting every shape
// of policy-controller's documented policies and rejecting malformed ones the way the API server
// would (pruning unknown fields first, then validating against the OpenAPI v3 schema).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RE2JS } from 're2js';
import { CRD_DIRS, crdFiles } from '../../deploy/crds/generate.ts';
import {
  CIP_VERSIONS,
  EXAMPLE_SPECS,
  EXAMPLE_TRUST_ROOTS,
  IMAGE_POLICY,
  MALFORMED_CIPS,
  MALFORMED_TRUST_ROOTS,
  SEED_POLICY,
  resource,
} from './examples.ts';
import { CrdSet, type Obj, REPO, readYaml, structuralViolations, validateBuiltin, yamlDocs } from './k8s.ts';

const CRD_FILES = Object.keys(crdFiles());
const crds = CRD_FILES.flatMap((f) => readYaml(join(REPO, 'deploy/crds', f)));
const set = new CrdSet(crds);

type Schema = Record<string, unknown>;
const schemaOf = (crd: Obj, version: string): Schema =>
  ((crd['spec'] as Schema)['versions'] as Schema[]).find((v) => v['name'] === version)!['schema'] as Schema;

test('the CRD files are what deploy/crds/generate.ts writes, in deploy/crds and in the Helm chart', () => {
  for (const dir of CRD_DIRS) {
    for (const [file, text] of Object.entries(crdFiles())) {
      assert.equal(readFileSync(join(REPO, dir, file), 'utf8'), text, `${dir}/${file} differs: run node deploy/crds/generate.ts`);
    }
  }
});

test('the CRDs are valid CustomResourceDefinitions with structural schemas', () => {
  assert.equal(crds.length, 3);
  for (const crd of crds) {
    assert.deepEqual(validateBuiltin(crd), [], `${(crd['metadata'] as Obj)['name']}`);
    for (const v of (crd['spec'] as Schema)['versions'] as Schema[]) {
      const schema = (v['schema'] as Schema)['openAPIV3Schema'] as Schema;
      assert.deepEqual(structuralViolations(schema), [], `${(crd['metadata'] as Obj)['name']} ${v['name']}`);
      assert.deepEqual(v['subresources'], { status: {} });
    }
  }
  // The checker itself catches what the API server refuses.
  assert.deepEqual(structuralViolations({ type: 'object', properties: { a: {} } }), ['.a: no type']);
  assert.deepEqual(structuralViolations({ type: 'object', properties: { a: { type: 'string' } }, oneOf: [{ required: ['b'] }] }), [
    '.oneOf[0]: requires undeclared field b',
  ]);
  assert.deepEqual(structuralViolations({ type: 'object', properties: { a: { type: 'string' } }, anyOf: [{ type: 'object' }] }), [
    '.anyOf[0]: type inside a junctor',
  ]);
});

test("every pattern in the schemas is valid RE2 (the API server's regular expressions)", () => {
  const patterns: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) k === 'pattern' && typeof x === 'string' ? patterns.push(x) : walk(x);
  };
  walk(crds);
  assert.ok(patterns.length >= 4);
  for (const p of patterns) assert.doesNotThrow(() => RE2JS.compile(p), p);
  assert.throws(() => RE2JS.compile('(?=lookahead)'));
});

test('kinds, scopes and versions: CIP v1alpha1+v1beta1 and TrustRoot v1alpha1 cluster-scoped, ImagePolicy namespaced', () => {
  const summary = crds.map((c) => {
    const s = c['spec'] as Schema;
    return {
      name: (c['metadata'] as Obj)['name'],
      scope: s['scope'],
      versions: (s['versions'] as Schema[]).map((v) => `${v['name']}${v['storage'] ? '*' : ''}`),
      conversion: s['conversion'],
    };
  });
  assert.deepEqual(summary, [
    {
      name: 'clusterimagepolicies.policy.sigstore.dev',
      scope: 'Cluster',
      versions: ['v1alpha1*', 'v1beta1'],
      conversion: { strategy: 'None' },
    },
    { name: 'trustroots.policy.sigstore.dev', scope: 'Cluster', versions: ['v1alpha1*'], conversion: { strategy: 'None' } },
    { name: 'imagepolicies.policy.waxseal.dev', scope: 'Namespaced', versions: ['v1alpha1*'], conversion: { strategy: 'None' } },
  ]);
  // Conversion strategy None is only sound because the versions share one schema; ImagePolicy
  // has the ClusterImagePolicy spec.
  const [cip, , ip] = crds as [Obj, Obj, Obj];
  assert.deepEqual(schemaOf(cip, 'v1alpha1'), schemaOf(cip, 'v1beta1'));
  const spec = (c: Obj, v: string): unknown => ((schemaOf(c, v)['openAPIV3Schema'] as Schema)['properties'] as Schema)['spec'];
  assert.deepEqual(
    JSON.stringify(spec(ip, 'v1alpha1')).replace('"The policy (the ClusterImagePolicy spec)."', '"The policy."'),
    JSON.stringify(spec(cip, 'v1alpha1')),
  );
});

for (const [name, specYaml] of Object.entries(EXAMPLE_SPECS)) {
  test(`accepts policy-controller's example: ${name} (v1alpha1, v1beta1, and as a namespaced ImagePolicy)`, () => {
    for (const apiVersion of CIP_VERSIONS) {
      const r = set.validate(resource(apiVersion, 'ClusterImagePolicy', 'example', specYaml));
      assert.deepEqual(r.errors, [], `${apiVersion}`);
      assert.deepEqual(r.pruned, [], 'nothing of a valid policy is pruned');
    }
    const r = set.validate(resource(IMAGE_POLICY, 'ImagePolicy', 'example', specYaml, 'team-a'));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.pruned, []);
  });
}

test("accepts the seed's ClusterImagePolicy (keyless + rfc3161timestamp, insecureIgnoreSCT) and its TrustRoot (sigstoreKeys)", () => {
  const docs = yamlDocs(SEED_POLICY, 'seed');
  assert.deepEqual(
    docs.map((d) => d['kind']),
    ['ClusterImagePolicy', 'TrustRoot'],
  );
  for (const d of docs) {
    const r = set.validate(d);
    assert.deepEqual(r.errors, [], `${d['kind']}`);
    assert.deepEqual(r.pruned, []);
  }
});

test('accepts TrustRoots in every documented shape: remote, repository, sigstoreKeys (full and TSA-only)', () => {
  const docs = yamlDocs(EXAMPLE_TRUST_ROOTS, 'trust roots');
  assert.equal(docs.length, 4);
  for (const d of docs) {
    const r = set.validate(d);
    assert.deepEqual(r.errors, [], `${(d['metadata'] as Obj)['name']}`);
    assert.deepEqual(r.pruned, []);
  }
});

// Every malformed spec is tried as each CIP version and as a namespaced ImagePolicy.
const TARGETS: [string, string, string | undefined][] = [
  ...CIP_VERSIONS.map((v): [string, string, undefined] => [v, 'ClusterImagePolicy', undefined]),
  [IMAGE_POLICY, 'ImagePolicy', 'team-a'],
];

for (const [what, specYaml, expected] of MALFORMED_CIPS) {
  test(`rejects a malformed ClusterImagePolicy: ${what}`, () => {
    for (const [apiVersion, kind, ns] of TARGETS) {
      const r = set.validate(resource(apiVersion, kind, 'bad', specYaml, ns));
      assert.equal(r.ok, false, `${apiVersion} ${kind} accepted it`);
      assert.ok(
        r.errors.some((e) => e.includes(expected)),
        `${apiVersion}: expected an error with ${JSON.stringify(expected)}, got ${JSON.stringify(r.errors)}`,
      );
    }
  });
}

for (const [what, body, expected] of MALFORMED_TRUST_ROOTS) {
  test(`rejects a malformed TrustRoot: ${what}`, () => {
    const extra = body === '' ? {} : yamlDocs(body, what)[0];
    const r = set.validate({ apiVersion: 'policy.sigstore.dev/v1alpha1', kind: 'TrustRoot', metadata: { name: 'bad' }, ...extra });
    assert.equal(r.ok, false);
    assert.ok(
      r.errors.some((e) => e.includes(expected)),
      `expected an error with ${JSON.stringify(expected)}, got ${JSON.stringify(r.errors)}`,
    );
  });
}

test('unknown fields are pruned, not rejected; a typo that leaves a required field unset is rejected', () => {
  const base = (extra: string): Obj =>
    resource(
      'policy.sigstore.dev/v1beta1',
      'ClusterImagePolicy',
      'p',
      `images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\n${extra}`,
    );

  // An unknown spec field: dropped, the rest stored.
  let r = set.validate(base('enforcement: strict'));
  assert.equal(r.ok, true);
  assert.deepEqual(r.pruned, ['.spec.enforcement']);
  assert.equal(((r.value as Obj)['spec'] as Obj)['enforcement'], undefined);

  // Unknown fields at any depth, and in status; metadata is the API server's and kept.
  const withExtras = base('');
  (withExtras['metadata'] as Obj)['labels'] = { team: 'a' };
  (((withExtras['spec'] as Obj)['authorities'] as Obj[])[0]!['static'] as Obj)['reason'] = 'x';
  withExtras['status'] = { observedGeneration: 2, phase: 'Ready' };
  r = set.validate(withExtras);
  assert.equal(r.ok, true);
  assert.deepEqual(r.pruned, ['.spec.authorities[0].static.reason', '.status.phase']);
  assert.deepEqual(((r.value as Obj)['metadata'] as Obj)['labels'], { team: 'a' });

  // A misspelt authority kind is pruned, which leaves the authority empty: rejected.
  r = set.validate(
    resource(
      'policy.sigstore.dev/v1alpha1',
      'ClusterImagePolicy',
      'p',
      'images: [{glob: "**"}]\nauthorities: [{keyles: {identities: [{issuer: i, subject: s}]}}]',
    ),
  );
  assert.equal(r.ok, false);
  assert.deepEqual(r.pruned, ['.spec.authorities[0].keyles']);
  assert.ok(r.errors.some((e) => e.includes("required property 'keyless'")));

  // A misspelt identity field likewise (subjectRegex for subjectRegExp).
  r = set.validate(
    resource(
      'policy.sigstore.dev/v1alpha1',
      'ClusterImagePolicy',
      'p',
      'images: [{glob: "**"}]\nauthorities: [{keyless: {identities: [{issuer: i, subjectRegex: ".*"}]}}]',
    ),
  );
  assert.equal(r.ok, false);
  assert.deepEqual(r.pruned, ['.spec.authorities[0].keyless.identities[0].subjectRegex']);

  // A TrustRoot with a misspelt source is pruned to nothing, then rejected.
  r = set.validate({ apiVersion: 'policy.sigstore.dev/v1alpha1', kind: 'TrustRoot', metadata: { name: 't' }, spec: { sigstorekeys: {} } });
  assert.equal(r.ok, false);
  assert.deepEqual(r.pruned, ['.spec.sigstorekeys']);
});

test('the status the webhook writes back (a Ready condition) is stored whole', () => {
  const cip = resource(
    'policy.sigstore.dev/v1beta1',
    'ClusterImagePolicy',
    'p',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]',
  );
  cip['status'] = {
    observedGeneration: 3,
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: 'InvalidPolicy',
        message: 'spec.images[0].glob: ...',
        lastTransitionTime: '2026-12-05T08:00:00Z',
      },
    ],
  };
  const r = set.validate(cip);
  assert.deepEqual([r.errors, r.pruned], [[], []]);
  ((cip['status'] as Obj)['conditions'] as Obj[])[0]!['status'] = 'Maybe';
  assert.equal(set.validate(cip).ok, false);
});

test('a kind or version no CRD serves is not accepted', () => {
  const r = set.validate(resource('policy.sigstore.dev/v1', 'ClusterImagePolicy', 'p', 'images: [{glob: "**"}]'));
  assert.equal(r.ok, false);
  assert.match(r.errors[0]!, /no CRD serves/);
  assert.equal(set.scope('policy.waxseal.dev/v1alpha1', 'ImagePolicy'), 'Namespaced');
  assert.equal(set.scope('policy.sigstore.dev/v1beta1', 'ClusterImagePolicy'), 'Cluster');
});
