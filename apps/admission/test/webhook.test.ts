// The admission webhook end to end with real peers: docker-registry (images pushed by skopeo), the
// dev instance (IdP, CA, TSA), images signed and attested by the real `waxseal` CLI (keyless with
// the TSA and no log, and with a cosign key), the real policy loader and engine, and the webhook
// over TLS answering AdmissionReview requests shaped as kube-apiserver sends them. Covers the seed
// policy verbatim and policy-controller's documented example policies (keyless with regexp
// identities, key with `data`, static pass/fail, attestations with a predicate policy, CIP-level
// k-of-n, warn mode, `match` selectors), each with its verdict, warnings and patches; a
// Deployment judged like its pods; and bad input (malformed reviews, unknown kinds, huge pod
// specs, registries that hang or answer garbage): a clear answer in time, and the webhook serves on.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { startAdmissionServer, type StartedAdmissionServer } from '../src/server.ts';
import {
  TRUST_ROOT_NAME,
  pushImage,
  registryToolsMissing,
  runCli,
  seedPolicy,
  signImage,
  startRegistry,
  useDevStack,
  type TestRegistry,
} from './fixture.ts';
import { admissionReview, deploymentObject, httpsCall, podObject, postReview, writeTls, type TestTls } from './webhook-fixture.ts';
import { fetchDevToken } from '../../dev-idp/src/dev-idp.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-webhook-e2e-');
const DEADLINE_MS = 3000;

type Obj = Record<string, any>;

/** Applies RFC 6902 `replace` ops as the API server does with a webhook's patch. */
function applyPatch(object: Obj, patchB64: string): Obj {
  const copy = structuredClone(object);
  for (const op of JSON.parse(Buffer.from(patchB64, 'base64').toString()) as { op: string; path: string; value: unknown }[]) {
    assert.equal(op.op, 'replace');
    const parts = op.path.split('/').slice(1);
    let cur = copy;
    for (const p of parts.slice(0, -1)) cur = cur[p];
    assert.ok(parts.at(-1)! in cur, `patch path ${op.path} exists`);
    cur[parts.at(-1)!] = op.value;
  }
  return copy;
}

describe('admission webhook end to end (real registry, dev instance, engine)', { skip, timeout: 300_000 }, () => {
  let reg: TestRegistry;
  let tls: TestTls;
  let srv: StartedAdmissionServer;
  let dir: string;
  let hang: Server;
  let garbage: Server;
  const sockets = new Set<Socket>();
  const digests: Record<string, string> = {};
  const PW = { COSIGN_PASSWORD: 'webhook test' };

  const cip = (name: string, glob: string, spec: Obj) => ({
    apiVersion: 'policy.sigstore.dev/v1beta1',
    kind: 'ClusterImagePolicy',
    metadata: { name },
    spec: { images: [{ glob }], ...spec },
  });
  const keyless = (identities: Obj[]) => ({
    keyless: { url: dev.stack.url, identities, trustRootRef: TRUST_ROOT_NAME, insecureIgnoreSCT: true },
    rfc3161timestamp: { trustRootRef: TRUST_ROOT_NAME },
  });

  before(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'wx-webhook-e2e-'));
    const r = reg.host;
    // A registry that accepts connections and never answers, and one that answers garbage.
    hang = createNetServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }) as unknown as Server;
    await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
    garbage = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': 'sha256:zz' });
      res.end('\x00\x01 not a manifest {{{');
    });
    await new Promise<void>((res) => garbage.listen(0, '127.0.0.1', res));

    const alice = 'alice@example.com';
    const push = async (name: string, seed = name) => (digests[name] = await pushImage(reg, `${name}:v1`, seed));
    // The seed policy's images.
    await push('seed/app');
    await signImage(dev, `${r}/seed/app:v1`, alice);
    await push('seed/unsigned');
    // Keyless with regexp identities.
    await push('regexp/app');
    await signImage(dev, `${r}/regexp/app:v1`, alice);
    await push('regexp/evil');
    await signImage(dev, `${r}/regexp/evil:v1`, 'mallory@evil.test');
    // Key with data (cosign key pair made by the CLI).
    const keyPrefix = join(dir, 'cosign');
    const g = await runCli(['generate-key-pair', '--output-key-prefix', keyPrefix], { env: PW });
    assert.equal(g.code, 0, g.stderr);
    const signKey = async (image: string) => {
      const s = await runCli(
        [
          'sign',
          image,
          '--key',
          `${keyPrefix}.key`,
          '--signing-config',
          dev.stack.signingConfigPath,
          '--tlog-upload=false',
          '--new-bundle-format=false',
        ],
        { env: PW },
      );
      assert.equal(s.code, 0, s.stderr);
    };
    await push('key/app');
    await signKey(`${r}/key/app:v1`);
    await push('key/unsigned');
    // Static.
    await push('static-pass/app');
    await push('static-fail/app');
    // Attestations with a predicate policy.
    const attest = async (image: string, predicate: Obj) => {
      const file = join(dir, `pred-${Math.random()}.json`);
      writeFileSync(file, JSON.stringify(predicate));
      const a = await runCli([
        'attest',
        image,
        '--predicate',
        file,
        '--type',
        'https://slsa.dev/provenance/v1',
        '--signing-config',
        dev.stack.signingConfigPath,
        '--identity-token',
        await fetchDevToken(dev.stack.issuer, alice),
        '--tlog-upload=false',
      ]);
      assert.equal(a.code, 0, a.stderr);
    };
    await push('att/good');
    await attest(`${r}/att/good:v1`, { buildDefinition: { buildType: 'https://example.com/build/v1' } });
    await push('att/bad');
    await attest(`${r}/att/bad:v1`, { buildDefinition: { buildType: 'https://evil.example/build' } });
    // k-of-n: two of alice (keyless), the key, and bob (keyless).
    await push('kofn/two');
    await signImage(dev, `${r}/kofn/two:v1`, alice);
    await signKey(`${r}/kofn/two:v1`);
    await push('kofn/one');
    await signKey(`${r}/kofn/one:v1`);
    // Warn mode and match selectors.
    await push('warn/app');
    await push('match/app');
    await push('nopolicy/app');

    const seed = await seedPolicy(dev, `${r}/seed/**`, alice);
    const keyPub = (await import('node:fs')).readFileSync(`${keyPrefix}.pub`, 'utf8');
    const policies = [
      cip('regexp-identities', `${r}/regexp/**`, {
        authorities: [keyless([{ issuerRegExp: `^${dev.stack.issuer.replace(/[.]/g, '\\.')}$`, subjectRegExp: '^.*@example\\.com$' }])],
      }),
      cip('key-data', `${r}/key/**`, { authorities: [{ key: { data: keyPub } }] }),
      cip('static-pass', `${r}/static-pass/**`, { authorities: [{ static: { action: 'pass' } }] }),
      cip('static-fail', `${r}/static-fail/**`, { authorities: [{ static: { action: 'fail', message: 'this repository is frozen' } }] }),
      cip('attested-build', `${r}/att/**`, {
        authorities: [
          {
            ...keyless([{ issuer: dev.stack.issuer, subject: alice }]),
            attestations: [
              {
                name: 'provenance',
                predicateType: 'https://slsa.dev/provenance/v1',
                policy: { type: 'cel', data: 'predicate.buildDefinition.buildType == "https://example.com/build/v1"' },
              },
            ],
          },
        ],
      }),
      cip('two-of-three', `${r}/kofn/**`, {
        authorities: [
          { name: 'alice', ...keyless([{ issuer: dev.stack.issuer, subject: alice }]) },
          { name: 'release-key', key: { data: keyPub } },
          { name: 'bob', ...keyless([{ issuer: dev.stack.issuer, subject: 'bob@example.com' }]) },
        ],
        policy: { type: 'cel', data: 'size(authorityMatches) >= 2' },
      }),
      cip('warn-only', `${r}/warn/**`, { mode: 'warn', authorities: [keyless([{ issuer: dev.stack.issuer, subject: alice }])] }),
      cip('web-pods-only', `${r}/match/**`, {
        match: [{ group: '', version: 'v1', resource: 'pods', selector: { matchLabels: { app: 'web' } } }],
        authorities: [keyless([{ issuer: dev.stack.issuer, subject: alice }])],
      }),
      cip('hanging-registry', `127.0.0.1:${(hang.address() as { port: number }).port}/**`, {
        authorities: [keyless([{ issuer: dev.stack.issuer, subject: alice }])],
      }),
      cip('garbage-registry', `127.0.0.1:${(garbage.address() as { port: number }).port}/**`, {
        authorities: [keyless([{ issuer: dev.stack.issuer, subject: alice }])],
      }),
    ];
    const policyDir = join(dir, 'policies');
    mkdirSync(policyDir);
    // The seed's TrustRoot + ClusterImagePolicy verbatim, as `waxseal policy trustroot` printed them.
    writeFileSync(join(policyDir, 'seed.yaml'), seed);
    writeFileSync(join(policyDir, 'examples.yaml'), policies.map((p) => stringify(p)).join('---\n'));
    tls = writeTls(dir);
    srv = await startAdmissionServer({
      policyDir,
      tlsCert: tls.certFile,
      tlsKey: tls.keyFile,
      host: '127.0.0.1',
      port: 0,
      deadlineMs: DEADLINE_MS,
      registry: { credentials: () => undefined, retries: 0 },
    });
    assert.equal(srv.source.status().ready, true, srv.source.status().error);
  });
  after(async () => {
    await srv?.close();
    for (const s of sockets) s.destroy();
    hang?.close();
    garbage?.close();
    await reg?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const validate = (object: Obj, over: Obj = {}) => postReview(`${srv.url}/validate`, tls.ca, admissionReview(object, over));
  const mutate = (object: Obj, over: Obj = {}) => postReview(`${srv.url}/mutate`, tls.ca, admissionReview(object, over));
  const pinned = (name: string) => `${reg.host}/${name}:v1@${digests[name]}`;
  /** What the API server does: mutate, apply the patch, validate the result. */
  const admit = async (object: Obj, over: Obj = {}) => {
    const m = await mutate(object, over);
    assert.equal(m.status, 200);
    assert.equal(m.json.response.allowed, true);
    const patched = m.json.response.patch ? applyPatch(object, m.json.response.patch) : object;
    const v = await validate(patched, over);
    assert.equal(v.status, 200);
    return { mutation: m.json.response, patched, response: v.json.response };
  };

  test('the seed policy verbatim: the signed pod is admitted (tag pinned), unsigned and re-tagged images are denied', async () => {
    const pod = podObject('web', [`${reg.host}/seed/app:v1`]);
    const a = await admit(pod);
    assert.equal(a.mutation.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(a.mutation.patch, 'base64').toString()), [
      { op: 'replace', path: '/spec/containers/0/image', value: pinned('seed/app') },
    ]);
    assert.deepEqual(a.response, { uid: a.response.uid, allowed: true });
    const no = await admit(podObject('web', [`${reg.host}/seed/unsigned:v1`]));
    assert.equal(no.response.allowed, false);
    assert.equal(no.response.status.code, 403);
    assert.match(
      no.response.status.message,
      new RegExp(
        `^image policy denied 1 image:\\nspec\\.containers\\[0\\]\\.image: ${pinned('seed/unsigned').replace(/[.]/g, '\\.')}: .*enforce-signed-keyless`,
      ),
    );
    // The tag now points at another (unsigned) image: pinned to the new digest, which is denied.
    const moved = await pushImage(reg, 'seed/app:v1', 'seed-app-evil');
    const r = await admit(pod);
    assert.equal(JSON.parse(Buffer.from(r.mutation.patch, 'base64').toString())[0].value, `${reg.host}/seed/app:v1@${moved}`);
    assert.equal(r.response.allowed, false);
    // The old digest stays admitted (the signature is for it).
    assert.equal((await validate(podObject('web', [pinned('seed/app')]))).json.response.allowed, true);
  });

  test('a Deployment is judged like its pods (template paths in the denial; the patch targets the template)', async () => {
    const ok = await admit(deploymentObject('api', [pinned('seed/app'), `${reg.host}/regexp/app:v1`]));
    assert.equal(ok.response.allowed, true, ok.response.status?.message);
    assert.deepEqual(JSON.parse(Buffer.from(ok.mutation.patch, 'base64').toString()), [
      { op: 'replace', path: '/spec/template/spec/containers/1/image', value: pinned('regexp/app') },
    ]);
    const no = await admit(deploymentObject('api', [pinned('seed/app'), `${reg.host}/seed/unsigned:v1`]));
    assert.equal(no.response.allowed, false);
    assert.match(no.response.status.message, /^image policy denied 1 image:\nspec\.template\.spec\.containers\[1\]\.image: /);
    // Every workload kind reaches the same decision.
    for (const [apiVersion, kind] of [
      ['apps/v1', 'ReplicaSet'],
      ['apps/v1', 'StatefulSet'],
      ['apps/v1', 'DaemonSet'],
      ['batch/v1', 'Job'],
    ]) {
      const d = { ...deploymentObject('w', [pinned('seed/unsigned')]), apiVersion, kind };
      assert.equal((await validate(d)).json.response.allowed, false, kind);
    }
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly' },
      spec: {
        schedule: '@daily',
        jobTemplate: {
          spec: { template: { spec: { containers: [{ name: 'c', image: pinned('seed/unsigned') }], restartPolicy: 'Never' } } },
        },
      },
    };
    const c = await validate(cron);
    assert.match(c.json.response.status.message, /spec\.jobTemplate\.spec\.template\.spec\.containers\[0\]\.image/);
  });

  test('keyless with regexp identities: alice@example.com passes, mallory@evil.test does not', async () => {
    assert.equal((await validate(podObject('p', [pinned('regexp/app')]))).json.response.allowed, true);
    const no = await validate(podObject('p', [pinned('regexp/evil')]));
    assert.equal(no.json.response.allowed, false);
    assert.match(no.json.response.status.message, /regexp-identities/);
  });

  test('key with data: the key-signed image passes, an unsigned one is denied', async () => {
    const ok = await validate(podObject('p', [pinned('key/app')]));
    assert.equal(ok.json.response.allowed, true, ok.json.response.status?.message);
    const no = await validate(podObject('p', [pinned('key/unsigned')]));
    assert.equal(no.json.response.allowed, false);
    assert.match(no.json.response.status.message, /key-data/);
  });

  test('static pass and fail', async () => {
    assert.equal((await validate(podObject('p', [pinned('static-pass/app')]))).json.response.allowed, true);
    const no = await validate(podObject('p', [pinned('static-fail/app')]));
    assert.equal(no.json.response.allowed, false);
    assert.match(no.json.response.status.message, /static-fail.*this repository is frozen/);
  });

  test('attestations with a predicate policy: the right build type passes, another is denied', async () => {
    const ok = await validate(podObject('p', [pinned('att/good')]));
    assert.equal(ok.json.response.allowed, true, ok.json.response.status?.message);
    const no = await validate(podObject('p', [pinned('att/bad')]));
    assert.equal(no.json.response.allowed, false);
    assert.match(no.json.response.status.message, /attested-build/);
  });

  test('CIP-level policy, 2 of 3 authorities: two signers pass, one does not', async () => {
    const ok = await validate(podObject('p', [pinned('kofn/two')]));
    assert.equal(ok.json.response.allowed, true, ok.json.response.status?.message);
    const no = await validate(podObject('p', [pinned('kofn/one')]));
    assert.equal(no.json.response.allowed, false);
    assert.match(no.json.response.status.message, /two-of-three/);
  });

  test('warn mode: allowed, with the failure as a warning naming the container path', async () => {
    const r = await validate(podObject('p', [pinned('warn/app')]));
    assert.equal(r.json.response.allowed, true);
    assert.equal(r.json.response.warnings.length, 1);
    assert.match(
      r.json.response.warnings[0],
      new RegExp(`^spec\\.containers\\[0\\]\\.image: ${pinned('warn/app').replace(/[.]/g, '\\.')}: .*warn-only`),
    );
  });

  test('match selectors: only pods labelled app=web are held to the policy; others match no policy (no-match deny)', async () => {
    const web = await validate(podObject('p', [pinned('match/app')], { app: 'web' }));
    assert.equal(web.json.response.allowed, false);
    assert.match(web.json.response.status.message, /web-pods-only/);
    const other = await validate(podObject('p', [pinned('match/app')], { app: 'batch' }));
    assert.equal(other.json.response.allowed, false);
    assert.match(other.json.response.status.message, /no matching polic/i);
    assert.doesNotMatch(other.json.response.status.message, /web-pods-only/);
    // A Deployment is not a pod: the policy's match names pods only.
    const dep = await validate(deploymentObject('d', [pinned('match/app')], { app: 'web' }));
    assert.match(dep.json.response.status.message, /no matching polic/i);
  });

  test('no matching policy: denied by default', async () => {
    const r = await validate(podObject('p', [pinned('nopolicy/app')]));
    assert.equal(r.json.response.allowed, false);
    assert.match(r.json.response.status.message, /no matching polic/i);
  });

  test('registries that hang or answer garbage: a clear denial within the deadline; the webhook keeps serving', async () => {
    const d = `sha256:${'c'.repeat(64)}`;
    const hangImage = `127.0.0.1:${(hang.address() as { port: number }).port}/x/app@${d}`;
    const garbageImage = `127.0.0.1:${(garbage.address() as { port: number }).port}/x/app@${d}`;
    const t0 = Date.now();
    const r = await validate(podObject('p', [hangImage, garbageImage, pinned('seed/app')]));
    const ms = Date.now() - t0;
    assert.ok(ms < DEADLINE_MS + 1500, `answered in ${ms} ms`);
    assert.equal(r.json.response.allowed, false);
    const lines = r.json.response.status.message.split('\n');
    assert.equal(lines[0], 'image policy denied 2 images:');
    assert.match(lines[1], /^spec\.containers\[0\]\.image: .*(deadline|did not answer|in time)/i);
    assert.match(lines[2], /^spec\.containers\[1\]\.image: /);
    // A tag in a hanging registry: the mutation answers in time, without a patch.
    const t1 = Date.now();
    const m = await mutate(podObject('p', [`127.0.0.1:${(hang.address() as { port: number }).port}/x/app:v1`]));
    assert.ok(Date.now() - t1 < DEADLINE_MS + 1500);
    assert.equal(m.json.response.allowed, true);
    assert.equal(m.json.response.patch, undefined);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).status, 200);
    assert.equal((await validate(podObject('p', [pinned('static-pass/app')]))).json.response.allowed, true);
  });

  test('bad input: malformed reviews, unknown kinds and huge pod specs get clear answers; the webhook keeps serving', async () => {
    const call = (body: string | Buffer) => httpsCall(`${srv.url}/validate`, { ca: tls.ca, body });
    const notJson = await call('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.code, 'ERR_JSON_PARSE');
    const wrong = admissionReview(podObject('p', [pinned('seed/app')]), { kind: 'Pod' });
    const w = await call(JSON.stringify(wrong));
    assert.equal(w.json.response.uid, (wrong.request as Obj).uid);
    assert.equal(w.json.response.status.code, 400);
    assert.match(w.json.response.status.message, /request\.kind must be an object/);
    const svc = await call(JSON.stringify(admissionReview({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: {} })));
    assert.equal(svc.json.response.allowed, false);
    assert.match(svc.json.response.status.message, /unsupported kind v1 Service/);
    const huge = podObject(
      'p',
      Array.from({ length: 2000 }, () => pinned('seed/app')),
    );
    const h = await call(JSON.stringify(admissionReview(huge)));
    assert.equal(h.json.response.allowed, false);
    assert.match(h.json.response.status.message, /more than 256 container images/);
    const tooBig = await call(Buffer.alloc((3 << 20) + 10, 0x20));
    assert.equal(tooBig.status, 413);
    const deep = await call(`{"a":${'['.repeat(100_000)}`);
    assert.equal(deep.status, 400);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).status, 200);
    assert.equal((await validate(podObject('p', [pinned('static-pass/app')]))).json.response.allowed, true);
  });

  test('deletes and status updates are not judged; a policy edit is picked up (generation changes)', async () => {
    const pod = podObject('p', [pinned('seed/unsigned')]);
    assert.equal((await validate(pod, { operation: 'DELETE', object: null, oldObject: pod })).json.response.allowed, true);
    assert.equal((await validate(pod, { operation: 'UPDATE', subResource: 'status', oldObject: pod })).json.response.allowed, true);
    const before = srv.source.status().generation;
    const policyDir = join(dir, 'policies');
    writeFileSync(
      join(policyDir, 'nopolicy.yaml'),
      stringify(cip('now-covered', `${reg.host}/nopolicy/**`, { authorities: [{ static: { action: 'pass' } }] })),
    );
    const until = Date.now() + 10_000;
    while (srv.source.status().generation === before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.notEqual(srv.source.status().generation, before);
    assert.equal((await validate(podObject('p', [pinned('nopolicy/app')]))).json.response.allowed, true);
    const ready = await httpsCall(`${srv.url}/readyz`, { ca: tls.ca });
    assert.equal(ready.json.generation, srv.source.status().generation);
  });
});
