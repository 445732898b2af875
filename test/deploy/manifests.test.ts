// deploy/manifests (kubectl apply -k) and its overlays: every object valid for its kind, and the
// objects consistent with each other and with the webhook's CLI and endpoints.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, deploymentErrors, ENDPOINTS, CLI_FLAGS, parseServeArgs, deadlineMs } from './consistency.ts';
import { CrdSet, type Obj, REPO, validateObject } from './k8s.ts';
import { MANIFESTS, OVERLAYS, byKey, haveKustomize, key, kustomizationResources, kustomize } from './manifests.ts';

const plain = kustomizationResources(MANIFESTS);
const crdSet = new CrdSet(plain.filter((o) => o['kind'] === 'CustomResourceDefinition'));
const NO_KUBECTL = 'kubectl (which bundles kustomize) is not installed';

test('deploy/manifests lists the namespace, CRDs, RBAC, Deployment, PodDisruptionBudget, Service and both webhooks', () => {
  assert.deepEqual(plain.map(key), [
    'CustomResourceDefinition//clusterimagepolicies.policy.sigstore.dev',
    'CustomResourceDefinition//trustroots.policy.sigstore.dev',
    'CustomResourceDefinition//imagepolicies.policy.waxseal.dev',
    'Namespace//waxseal-system',
    'ServiceAccount/waxseal-system/waxseal-admission',
    'ClusterRole//waxseal-admission',
    'ClusterRoleBinding//waxseal-admission',
    'Deployment/waxseal-system/waxseal-admission',
    'PodDisruptionBudget/waxseal-system/waxseal-admission',
    'Service/waxseal-system/waxseal-admission',
    'ValidatingWebhookConfiguration//policy.waxseal.dev',
    'MutatingWebhookConfiguration//policy.waxseal.dev',
  ]);
});

test('every object of deploy/manifests validates against its kind', () => {
  for (const o of plain) assert.deepEqual(validateObject(o, crdSet), [], key(o));
});

test('deploy/manifests hangs together: webhooks -> Service -> container port, CLI flags, probes, RBAC, availability', () => {
  assert.deepEqual(deploymentErrors(plain), []);
});

test('kustomize builds deploy/manifests to the same objects', { skip: !haveKustomize() && NO_KUBECTL }, () => {
  const built = byKey(kustomize(MANIFESTS));
  const listed = byKey(plain);
  assert.deepEqual([...built.keys()].sort(), [...listed.keys()].sort());
  for (const [k, o] of listed) assert.deepEqual(built.get(k), o, k);
});

test('overlay policy-dir: the policies come from a mounted ConfigMap instead of the API', { skip: !haveKustomize() && NO_KUBECTL }, () => {
  const objs = kustomize(OVERLAYS[0]!);
  for (const o of objs) assert.deepEqual(validateObject(o, crdSet), [], key(o));
  assert.deepEqual(deploymentErrors(objs, { ...DEFAULTS, policies: { configMap: 'waxseal-policies' } }), []);
  assert.ok(objs.some((o) => key(o) === 'ConfigMap/waxseal-system/waxseal-policies'));
});

test('overlay cert-manager: certificates issued and the CA injected into both webhooks', { skip: !haveKustomize() && NO_KUBECTL }, () => {
  const objs = kustomize(OVERLAYS[1]!);
  for (const o of objs) assert.deepEqual(validateObject(o, crdSet), [], key(o));
  assert.deepEqual(deploymentErrors(objs), []);
  const cert = objs.find((o) => key(o) === 'Certificate/waxseal-system/waxseal-admission') as Record<string, any>;
  const dep = objs.find((o) => o['kind'] === 'Deployment') as Record<string, any>;
  const tlsSecret = dep['spec'].template.spec.volumes.find((v: Obj) => v['name'] === 'tls').secret.secretName;
  assert.equal(cert['spec'].secretName, tlsSecret);
  assert.ok(cert['spec'].dnsNames.includes('waxseal-admission.waxseal-system.svc'));
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const w = objs.find((o) => o['kind'] === kind)!;
    assert.equal(
      (w['metadata'] as Record<string, any>)['annotations']['cert-manager.io/inject-ca-from'],
      'waxseal-system/waxseal-admission',
    );
  }
});

test('the checks catch a broken deployment', () => {
  const broken = structuredClone(plain) as Record<string, any>[];
  const dep = broken.find((o) => o['kind'] === 'Deployment')!;
  const vwc = broken.find((o) => o['kind'] === 'ValidatingWebhookConfiguration')!;
  const svc = broken.find((o) => o['kind'] === 'Service')!;
  const c = dep['spec'].template.spec.containers[0];
  c.args = c.args.map((a: string) => (a === '8443' ? '9443' : a === '8s' ? '12s' : a));
  c.args.push('--verbose');
  vwc['webhooks'][0].clientConfig.service.path = '/validations';
  svc['spec'].selector = { app: 'other' };
  c.securityContext.readOnlyRootFilesystem = false;
  const errors = deploymentErrors(broken as Obj[]);
  for (const e of [
    'unknown flag --verbose',
    '--port 9443 is not a container port',
    '--deadline 12s is not below timeoutSeconds 10',
    'ValidatingWebhookConfiguration path /validations, expected /validate',
    'the Service does not select the pods',
    'root filesystem writable',
  ]) {
    assert.ok(errors.includes(e), `${e} not in ${JSON.stringify(errors)}`);
  }
  // And the kind checks catch an unknown field, a wrong type and a bad enum.
  const d2 = structuredClone(plain.find((o) => o['kind'] === 'Deployment')!) as Record<string, any>;
  d2['spec'].replica = 2;
  d2['spec'].template.spec.containers[0].ports[0].containerPort = '8443';
  d2['spec'].template.spec.containers[0].readinessProbe.httpGet.scheme = 'https';
  assert.deepEqual(validateObject(d2 as Obj).sort(), [
    '.spec.replica: unknown field of V1DeploymentSpec',
    '.spec.template.spec.containers[0].ports[0].containerPort: expected int32, got "8443"',
    '.spec.template.spec.containers[0].readinessProbe.httpGet.scheme: "https" is not one of HTTP, HTTPS',
  ]);
  const w2 = structuredClone(plain.find((o) => o['kind'] === 'MutatingWebhookConfiguration')!) as Record<string, any>;
  delete w2['webhooks'][0].name;
  w2['webhooks'][0].reinvocationPolicy = 'Always';
  assert.deepEqual(validateObject(w2 as Obj).sort(), [
    '.webhooks[0].name: required by V1MutatingWebhook',
    '.webhooks[0].reinvocationPolicy: "Always" is not one of Never, IfNeeded',
  ]);
});

// The webhook's CLI and server are written beside this deployment; where their sources are
// present, the flags and endpoints used here must appear in them.
const CLI_SOURCE = join(REPO, 'apps/cli/src/commands/admission.ts');
const SERVER_SOURCE = join(REPO, 'apps/admission/src/server.ts');
test('the flags and endpoints the deployment uses are those of the CLI and server sources', {
  skip: !(existsSync(CLI_SOURCE) && existsSync(SERVER_SOURCE)) && 'the admission CLI or server source is not there yet',
}, () => {
  // The option table of `waxseal admission serve` (node:util parseArgs style: name: { type }).
  const cli = readFileSync(CLI_SOURCE, 'utf8');
  const options = new Map([...cli.matchAll(/^\s+'?([a-z][a-z-]*)'?: \{ type: '(string|boolean)'/gm)].map((m) => [`--${m[1]}`, m[2]]));
  assert.ok(options.size > 0, `no options found in ${CLI_SOURCE}`);
  for (const [flag, spec] of Object.entries(CLI_FLAGS)) {
    assert.equal(options.get(flag), spec.value ? 'string' : 'boolean', `${flag} in ${CLI_SOURCE}`);
  }
  const server = readFileSync(SERVER_SOURCE, 'utf8');
  for (const path of Object.values(ENDPOINTS)) assert.ok(server.includes(`'${path}'`), `${path} not in ${SERVER_SOURCE}`);
});

test('parseServeArgs and deadlineMs read the argument forms the deployment writes', () => {
  const errors: string[] = [];
  const flags = parseServeArgs(['waxseal', 'admission', 'serve', '--kube', '--no-match', 'warn', '--deadline', '750ms'], errors);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    [...flags],
    [
      ['--kube', true],
      ['--no-match', 'warn'],
      ['--deadline', '750ms'],
    ],
  );
  parseServeArgs(['waxseal', 'admission', 'serve', '--no-match', 'maybe', '--tls-cert'], errors);
  assert.deepEqual(errors, ['--no-match maybe: not one of deny, allow, warn', '--tls-cert without a value']);
  assert.equal(deadlineMs('8s'), 8000);
  assert.throws(() => deadlineMs('8 seconds'));
});
