// The Deployment's command line, run: `waxseal admission serve` with exactly the arguments of
// deploy/manifests (only the file paths moved to a temporary folder, --kube swapped for the
// policy-dir overlay's --policy-dir, and the port made ephemeral on 127.0.0.1), with a serving
// certificate made by docs/admission.md's own openssl commands. The probes' paths answer over TLS
// for the Service's DNS name with the caBundle's CA, and the webhook configurations' paths answer
// AdmissionReviews: an image no policy covers is denied naming its container path.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ENDPOINTS } from './consistency.ts';
import { REPO } from './k8s.ts';
import { MANIFESTS, kustomizationResources } from './manifests.ts';
import { seedWithRealChains } from './pki.ts';
import { stringify } from 'yaml';

const MAIN = join(REPO, 'apps/cli/src/main.ts');
const SERVICE_DNS = 'waxseal-admission.waxseal-system.svc';
const dir = mkdtempSync(join(tmpdir(), 'waxseal-serve-'));
let child: ChildProcess | undefined;
let port = 0;
let output = '';

type O = Record<string, any>;
const objects = kustomizationResources(MANIFESTS) as O[];
const deployment = objects.find((o) => o['kind'] === 'Deployment')!;
const container = deployment['spec'].template.spec.containers[0];
const webhookPath = (kind: string): string => objects.find((o) => o['kind'] === kind)!['webhooks'][0].clientConfig.service.path;

/** The ```sh block of docs/admission.md that makes the CA and the serving certificate. */
function docsOpensslBlock(): string {
  const doc = readFileSync(join(REPO, 'docs/admission.md'), 'utf8');
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes('openssl req -x509'));
  assert.ok(block, 'docs/admission.md has the openssl block');
  return block;
}

function call(path: string, body?: unknown): Promise<{ status: number; json: O }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        servername: SERVICE_DNS, // as the API server calls the Service
        ca: readFileSync(join(dir, 'ca.crt')),
        headers: { 'content-type': 'application/json' },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${path}: timed out`)));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

before(async () => {
  execFileSync('bash', ['-euo', 'pipefail', '-c', docsOpensslBlock()], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  writeFileSync(
    join(policies, 'seed.yaml'),
    seedWithRealChains()
      .map((o) => stringify(o))
      .join('---\n'),
  );

  // The container's argv, with in-cluster paths moved here.
  const argv: string[] = [...container.command, ...container.args].map((a: string) =>
    a === '/etc/waxseal/tls/tls.crt' ? join(dir, 'tls.crt') : a === '/etc/waxseal/tls/tls.key' ? join(dir, 'tls.key') : a,
  );
  const at = argv.indexOf('--kube');
  assert.ok(at > 0, 'the Deployment runs with --kube');
  argv.splice(at, 1, '--policy-dir', policies);
  argv[argv.indexOf('--port') + 1] = '0';
  argv.push('--host', '127.0.0.1');
  assert.equal(argv[0], 'waxseal');
  child = spawn(process.execPath, ['--conditions=waxseal-source', MAIN, ...argv.slice(1)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => (output += d));
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the webhook did not start: ${output}`)), 60_000);
    child!.stdout!.on('data', (d) => {
      output += d;
      const m = /https:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) clearTimeout(timer), resolve(Number(m[1]));
    });
    child!.on('exit', (code) => (clearTimeout(timer), reject(new Error(`the webhook exited (${code}): ${output}`))));
  });
});

after(() => {
  child?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test("the probes' paths answer over TLS, for the Service's name, with the caBundle's CA", async () => {
  assert.equal(container.livenessProbe.httpGet.path, ENDPOINTS.healthz);
  assert.equal((await call(container.livenessProbe.httpGet.path)).status, 200);
  // Ready once the policy folder (the seed ClusterImagePolicy and TrustRoot) is loaded.
  let ready = await call(container.readinessProbe.httpGet.path);
  for (let i = 0; i < 50 && ready.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = await call(container.readinessProbe.httpGet.path);
  }
  assert.equal(ready.status, 200, JSON.stringify(ready.json));
});

const review = (image: string): O => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    requestKind: { group: '', version: 'v1', kind: 'Pod' },
    requestResource: { group: '', version: 'v1', resource: 'pods' },
    name: 'other',
    namespace: 'demo',
    operation: 'CREATE',
    userInfo: { username: 'dev', groups: ['system:authenticated'] },
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'other', namespace: 'demo' },
      spec: { containers: [{ name: 'other', image }] },
    },
    oldObject: null,
    dryRun: false,
    options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
  },
});

test("the validating webhook's path denies an image no policy covers, naming the container path", async () => {
  const image = `127.0.0.1:9/acme/unsigned@sha256:${'0'.repeat(64)}`;
  const r = await call(webhookPath('ValidatingWebhookConfiguration'), review(image));
  assert.equal(r.status, 200);
  assert.equal(r.json['response'].uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
  assert.equal(r.json['response'].allowed, false);
  assert.match(
    r.json['response'].status.message,
    /^image policy denied 1 image:\nspec\.containers\[0\]\.image: 127\.0\.0\.1:9\/acme\/unsigned@sha256:0+: /,
  );
});

test("the mutating webhook's path answers (allowed; nothing to pin when the registry cannot be reached)", async () => {
  const r = await call(webhookPath('MutatingWebhookConfiguration'), review('127.0.0.1:9/acme/unsigned:v1'));
  assert.equal(r.status, 200);
  assert.equal(r.json['response'].allowed, true);
  assert.equal(r.json['response'].patch, undefined);
});
