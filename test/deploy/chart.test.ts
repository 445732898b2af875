// The Helm chart, rendered as `helm template` would render it (Helm is not installable here; see
// chart.ts): with default and non-default values, every object valid for its kind and consistent
// with the webhook's CLI; with defaults, the same objects as deploy/manifests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CANNOT_RENDER, CHART, defaultValues, lintTemplate, mergeValues, renderChart, valuesErrors } from './chart.ts';
import { DEFAULTS, deploymentErrors, withoutHelmLabels } from './consistency.ts';
import { CrdSet, type Obj, readYaml, validateObject } from './k8s.ts';
import { MANIFESTS, key, kustomizationResources } from './manifests.ts';

const plain = kustomizationResources(MANIFESTS);
const crdSet = new CrdSet(readdirYaml(join(CHART, 'crds')));

function readdirYaml(dir: string): Obj[] {
  return [
    'clusterimagepolicies.policy.sigstore.dev.yaml',
    'trustroots.policy.sigstore.dev.yaml',
    'imagepolicies.policy.waxseal.dev.yaml',
  ].flatMap((f) => readYaml(join(dir, f)));
}

test('Chart.yaml is a v2 application chart; its CRDs are in crds/, not templates', { skip: CANNOT_RENDER }, () => {
  const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
  assert.equal(chart.apiVersion, 'v2');
  assert.equal(chart.name, 'waxseal-admission');
  assert.equal(chart.type, 'application');
  assert.match(chart.version, /^\d+\.\d+\.\d+$/);
  assert.equal(typeof chart.appVersion, 'string');
  assert.deepEqual(
    crdSet.crds.map((c) => (c['metadata'] as Obj)['name']),
    ['clusterimagepolicies.policy.sigstore.dev', 'trustroots.policy.sigstore.dev', 'imagepolicies.policy.waxseal.dev'],
  );
  assert.ok(!renderChart().objects.some((o) => o['kind'] === 'CustomResourceDefinition'));
});

test('default values: every rendered object validates, and they are the objects of deploy/manifests', { skip: CANNOT_RENDER }, () => {
  assert.deepEqual(valuesErrors(defaultValues()), []);
  const { objects } = renderChart();
  for (const o of objects) assert.deepEqual(validateObject(o, crdSet), [], key(o));
  assert.deepEqual(deploymentErrors(objects), []);
  // deploy/manifests also creates the namespace (Helm's --create-namespace does here) and the CRDs (crds/).
  const expected = plain.filter((o) => o['kind'] !== 'Namespace' && o['kind'] !== 'CustomResourceDefinition');
  assert.deepEqual(objects.map(key).sort(), expected.map(key).sort());
  const byKey = new Map(objects.map((o) => [key(o), withoutHelmLabels(o)]));
  for (const o of expected) assert.deepEqual(byKey.get(key(o)), o, key(o));
  // Helm's own labels are there.
  const dep = objects.find((o) => o['kind'] === 'Deployment') as Record<string, any>;
  assert.equal(dep['metadata'].labels['app.kubernetes.io/instance'], 'waxseal');
  assert.equal(dep['metadata'].labels['helm.sh/chart'], 'waxseal-admission-0.1.0');
});

test('non-default values: namespace, replicas, ConfigMap policies, cert-manager, caBundle, webhook settings', {
  skip: CANNOT_RENDER,
}, () => {
  const overrides = {
    replicaCount: 3,
    policies: { configMap: 'cluster-policies' },
    noMatch: 'warn',
    deadline: '12500ms',
    port: 9443,
    image: { repository: 'registry.example.com/waxseal', tag: '0.2.0', pullPolicy: 'Always' },
    webhook: { failurePolicy: 'Ignore', timeoutSeconds: 15, namespaceLabel: 'example.com/signed-images', namespaceLabelValue: 'enforced' },
    tls: {
      secretName: 'admission-serving',
      caBundle: Buffer.from('-----BEGIN CERTIFICATE-----').toString('base64'),
      certManager: { enabled: true },
    },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    podDisruptionBudget: { minAvailable: 2 },
  };
  const { objects } = renderChart(overrides, { name: 'sec', namespace: 'security' });
  for (const o of objects) assert.deepEqual(validateObject(o, crdSet), [], key(o));
  assert.deepEqual(
    deploymentErrors(objects, {
      namespace: 'security',
      replicas: 3,
      timeoutSeconds: 15,
      failurePolicy: 'Ignore',
      namespaceLabel: 'example.com/signed-images',
      namespaceLabelValue: 'enforced',
      policies: { configMap: 'cluster-policies' },
    }),
    [],
  );
  const dep = objects.find((o) => o['kind'] === 'Deployment') as Record<string, any>;
  const c = dep['spec'].template.spec.containers[0];
  assert.equal(c.image, 'registry.example.com/waxseal:0.2.0');
  assert.deepEqual(c.args, [
    'admission',
    'serve',
    '--policy-dir',
    '/etc/waxseal/policies',
    '--tls-cert',
    '/etc/waxseal/tls/tls.crt',
    '--tls-key',
    '/etc/waxseal/tls/tls.key',
    '--port',
    '9443',
    '--no-match',
    'warn',
    '--deadline',
    '12500ms',
  ]);
  assert.deepEqual(c.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } });
  assert.equal(dep['spec'].template.spec.volumes.find((v: Obj) => v['name'] === 'tls').secret.secretName, 'admission-serving');
  // cert-manager objects in the release namespace, the certificate for the Service's name.
  const cert = objects.find((o) => key(o) === 'Certificate/security/waxseal-admission') as Record<string, any>;
  assert.equal(cert['spec'].secretName, 'admission-serving');
  assert.deepEqual(cert['spec'].dnsNames, ['waxseal-admission.security.svc', 'waxseal-admission.security.svc.cluster.local']);
  assert.deepEqual(objects.filter((o) => o['apiVersion'] === 'cert-manager.io/v1').map(key), [
    'Issuer/security/waxseal-selfsigned',
    'Certificate/security/waxseal-admission-ca',
    'Issuer/security/waxseal-admission-ca',
    'Certificate/security/waxseal-admission',
  ]);
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const w = objects.find((o) => o['kind'] === kind) as Record<string, any>;
    assert.equal(w['metadata'].annotations['cert-manager.io/inject-ca-from'], 'security/waxseal-admission');
    assert.equal(w['webhooks'][0].clientConfig.caBundle, overrides.tls.caBundle);
  }
  const pdb = objects.find((o) => o['kind'] === 'PodDisruptionBudget') as Record<string, any>;
  assert.equal(pdb['spec'].minAvailable, 2);
  const binding = objects.find((o) => o['kind'] === 'ClusterRoleBinding') as Record<string, any>;
  assert.equal(binding['subjects'][0].namespace, 'security');
});

test('extraArgs are appended; without caBundle or cert-manager the webhooks carry neither', { skip: CANNOT_RENDER }, () => {
  const { objects, files } = renderChart({ extraArgs: ['--future-flag', 'x'] });
  const dep = objects.find((o) => o['kind'] === 'Deployment') as Record<string, any>;
  assert.deepEqual(dep['spec'].template.spec.containers[0].args.slice(-2), ['--future-flag', 'x']);
  const w = objects.find((o) => o['kind'] === 'MutatingWebhookConfiguration') as Record<string, any>;
  assert.equal(w['webhooks'][0].clientConfig.caBundle, undefined);
  assert.equal(w['metadata'].annotations, undefined);
  assert.equal(files['certificate.yaml']!.trim(), '');
});

test('values.schema.json rejects bad values, as helm install would', () => {
  const bad: [string, Obj, string][] = [
    ['noMatch unknown', { noMatch: 'maybe' }, '/noMatch must be equal to one of the allowed values'],
    ['a quote in a string', { image: { tag: '1.0"' } }, '/image/tag must match pattern'],
    ['a backslash in an extra argument', { extraArgs: ['a\\b'] }, '/extraArgs/0 must match pattern'],
    ['timeoutSeconds above 30', { webhook: { timeoutSeconds: 31 } }, '/webhook/timeoutSeconds must be <= 30'],
    ['replicas as a string', { replicaCount: '2' }, '/replicaCount must be integer'],
    ['an unknown value', { replicas: 2 }, 'must NOT have additional properties'],
    ['caBundle not base64', { tls: { caBundle: '-----BEGIN' } }, '/tls/caBundle must match pattern'],
    ['a deadline without a unit', { deadline: '8' }, '/deadline must match pattern'],
    ['a ConfigMap name with upper case', { policies: { configMap: 'Policies' } }, '/policies/configMap must match'],
  ];
  for (const [what, overrides, expected] of bad) {
    const errors = valuesErrors(mergeValues(defaultValues(), overrides));
    assert.ok(
      errors.some((e) => e.includes(expected)),
      `${what}: ${JSON.stringify(errors)}`,
    );
  }
  // renderChart refuses such values before rendering, as helm does.
  assert.throws(() => renderChart({ noMatch: 'maybe' }), /values.schema.json rejects the values/);
});

test('the template subset: what Helm and the TypeScript renderer agree on, and nothing else', () => {
  const values = defaultValues();
  const cases: [string, string][] = [
    ['a: {{ .Values.noMatch }}', ''],
    ['{{ if and .Values.tls.caBundle .Values.tls.certManager.enabled }}x{{ else }}y{{ end }}', ''],
    ['{{ range .Values.extraArgs }}- "{{ . }}"{{ end }}', ''],
    ['{{- if .Values.noMatch }}x{{ end }}', 'one space, no trimming'],
    ['{{ .Values.noMatch | quote }}', 'outside the subset'],
    ['{{ quote .Values.noMatch }}', 'outside the subset'],
    ['{{ .Values.nomatch }}', '.Values.nomatch is not in values.yaml'],
    ['{{ if .Values.tls }}x{{ end }}', 'if over a map'],
    ['{{ range .Values.replicaCount }}x{{ end }}', 'not a list'],
    ['{{ range .Values.extraArgs }}{{ .Release.Name }}{{ end }}', 'inside range only'],
    ['{{ . }}', 'outside range'],
    ['{{ if eq .Values.noMatch "deny" }}x{{ end }}', 'condition outside the subset'],
    ['{{ $x := .Values.noMatch }}', 'outside the subset'],
    ['{{/* a comment */}}', 'outside the subset'],
    ['{{ .Capabilities.KubeVersion }}', 'outside the subset'],
    ['{{ .Release.Revision }}', 'not a built-in object the renderer provides'],
    ['{{ if .Values.noMatch }}x', 'unterminated if'],
    ['{{ end }}', 'end without'],
    ['minAvailable: { { .Values.replicaCount } }', 'a reformatted action'],
  ];
  for (const [template, expected] of cases) {
    const errors = lintTemplate(template, values);
    if (expected === '') assert.deepEqual(errors, [], template);
    else
      assert.ok(
        errors.some((e) => e.includes(expected)),
        `${template}: expected ${expected}, got ${JSON.stringify(errors)}`,
      );
  }
  // README.md documents the subset for whoever edits the chart.
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  assert.match(readme, /## Template subset/);
});

test('DEFAULTS in consistency.ts are the chart defaults', () => {
  const v = defaultValues() as Record<string, any>;
  assert.equal(v['replicaCount'], DEFAULTS.replicas);
  assert.equal(v['webhook'].timeoutSeconds, DEFAULTS.timeoutSeconds);
  assert.equal(v['webhook'].failurePolicy, DEFAULTS.failurePolicy);
  assert.equal(v['webhook'].namespaceLabel, DEFAULTS.namespaceLabel);
  assert.equal(v['webhook'].namespaceLabelValue, DEFAULTS.namespaceLabelValue);
});
