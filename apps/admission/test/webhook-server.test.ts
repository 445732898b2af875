// The webhook server over TLS with a stand-in engine (the decisions are the real engine's job and
// are tested end to end in webhook.test.ts): the AdmissionReview wire format, paths, deadlines,
// bad input of every kind, TLS reloads and policy folder reloads.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { AdmissionEngine, ImageCheck, ImageVerdict } from '../src/contract.ts';
import { serveAdmission, type ReviewLog, type RunningAdmissionServer } from '../src/server.ts';
import { DirectorySource, StaticSource, type PolicyDocument } from '../src/sources.ts';
import { admissionReview, deploymentObject, httpsCall, podObject, postReview, writeTls, type TestTls } from './webhook-fixture.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

/** Decides by the image name: signed, unsigned, warn, hang (ignores the signal), failopen (allows once aborted), crash. */
class FakeEngine implements AdmissionEngine<{ generation: string }> {
  checks: ImageCheck[] = [];
  stores: string[] = [];
  async check(req: ImageCheck, signal: AbortSignal): Promise<ImageVerdict> {
    this.checks.push(req);
    const base = { image: req.image, policies: ['p'] };
    if (req.image.includes('/hang')) return new Promise(() => {});
    if (req.image.includes('/failopen')) {
      await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      return { ...base, allowed: true, errors: [], warnings: ['verification timed out; policy p fails open'] };
    }
    if (req.image.includes('/crash')) throw new TypeError('engine bug');
    if (req.image.includes('/unsigned'))
      return { ...base, allowed: false, errors: ['failed policy: p: no matching signatures'], warnings: [] };
    if (req.image.includes('/warn'))
      return { ...base, allowed: true, errors: [], warnings: ['failed policy: w (warn mode): no matching signatures'] };
    return { ...base, allowed: true, errors: [], warnings: [] };
  }
  setStore(store: { generation: string }): void {
    this.stores.push(store.generation);
  }
}

const reg = 'registry.example';

describe('admission webhook server (stand-in engine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-webhook-'));
  let tls: TestTls;
  let srv: RunningAdmissionServer;
  const engine = new FakeEngine();
  const logs: ReviewLog[] = [];
  const resolved: string[] = [];
  before(async () => {
    tls = writeTls(dir);
    srv = await serveAdmission({
      source: new StaticSource({ generation: 'g1' }),
      engine,
      resolver: async (image, _secrets, signal) => {
        resolved.push(image);
        if (image.includes('/hang'))
          return new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
        if (image.includes('/missing')) throw new Error('manifest unknown');
        return image.includes('/two') ? D2 : D1;
      },
      tlsCert: tls.certFile,
      tlsKey: tls.keyFile,
      deadlineMs: 400,
      tlsPollMs: 0,
      onReview: (e) => logs.push(e),
    });
  });
  after(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const post = (path: string, review: unknown) => postReview(`${srv.url}${path}`, tls.ca, review);

  test('a signed pod is allowed; the answer echoes the uid and version; both path spellings work', async () => {
    const rv = admissionReview(podObject('web', [`${reg}/signed@${D1}`]));
    for (const path of ['/validate', '/validations']) {
      const r = await post(path, rv);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(r.json, {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: (rv.request as { uid: string }).uid, allowed: true },
      });
    }
    const check = engine.checks.at(-1)!;
    assert.equal(check.image, `${reg}/signed@${D1}`);
    assert.equal(check.namespace, 'team-a');
    assert.equal(check.kind, 'Pod');
    assert.equal(check.apiVersion, 'v1');
    assert.deepEqual(check.labels, { app: 'web' });
    assert.deepEqual(check.pullSecrets, []);
    assert.deepEqual(check.resource?.typemeta, { apiVersion: 'v1', kind: 'Pod' });
    assert.equal((check.resource!.metadata as { name: string }).name, 'web');
  });

  test('a denial names each failing container path; warnings come back with the path; images are checked once each', async () => {
    const before = engine.checks.length;
    const pod = podObject('mixed', [`${reg}/signed@${D1}`, `${reg}/unsigned@${D1}`, `${reg}/warn@${D1}`, `${reg}/unsigned@${D1}`]);
    const r = await post('/validate', admissionReview(pod));
    assert.equal(r.json.response.allowed, false);
    assert.equal(r.json.response.status.code, 403);
    assert.equal(
      r.json.response.status.message,
      `image policy denied 2 images:\nspec.containers[1].image: ${reg}/unsigned@${D1}: failed policy: p: no matching signatures\nspec.containers[3].image: ${reg}/unsigned@${D1}: failed policy: p: no matching signatures`,
    );
    assert.deepEqual(r.json.response.warnings, [
      `spec.containers[2].image: ${reg}/warn@${D1}: failed policy: w (warn mode): no matching signatures`,
    ]);
    assert.equal(engine.checks.length - before, 3, 'the repeated image is checked once');
  });

  test('a Deployment is judged like its pods, at the template paths', async () => {
    const r = await post('/validate', admissionReview(deploymentObject('api', [`${reg}/unsigned@${D1}`])));
    assert.equal(r.json.response.allowed, false);
    assert.match(r.json.response.status.message, /^image policy denied 1 image:\nspec\.template\.spec\.containers\[0\]\.image: /);
    assert.equal(engine.checks.at(-1)!.kind, 'Deployment');
  });

  test('/validate denies a tag (the mutating webhook pins tags first); /mutate pins it keeping the tag', async () => {
    const pod = podObject('tags', [`${reg}/app:v1`, `${reg}/two:v2`, `${reg}/side@${D1}`, `${reg}/missing:v3`], undefined, {
      initContainers: [{ name: 'init', image: `${reg}/app:v1` }],
      volumes: [{ name: 'models', image: { reference: `${reg}/two:v2` } }],
    });
    const v = await post('/validate', admissionReview(pod));
    assert.equal(v.json.response.allowed, false);
    assert.match(
      v.json.response.status.message,
      /spec\.containers\[0\]\.image: registry\.example\/app:v1: registry\.example\/app:v1 must be an image digest/,
    );
    const m = await post('/mutations', admissionReview(pod));
    assert.equal(m.json.response.allowed, true);
    assert.equal(m.json.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(m.json.response.patch, 'base64').toString()), [
      { op: 'replace', path: '/spec/initContainers/0/image', value: `${reg}/app:v1@${D1}` },
      { op: 'replace', path: '/spec/containers/0/image', value: `${reg}/app:v1@${D1}` },
      { op: 'replace', path: '/spec/containers/1/image', value: `${reg}/two:v2@${D2}` },
      { op: 'replace', path: '/spec/volumes/0/image/reference', value: `${reg}/two:v2@${D2}` },
    ]);
    assert.deepEqual(
      resolved.slice(-3).sort(),
      [`${reg}/app:v1`, `${reg}/missing:v3`, `${reg}/two:v2`],
      'each tag resolved once; the pinned one not at all',
    );
    // kubectl debug (the ephemeralcontainers subresource): only the ephemeral container is pinned.
    const debug = { ...pod, spec: { ...pod.spec, ephemeralContainers: [{ name: 'dbg', image: `${reg}/two:v2` }] } };
    const e = await post('/mutate', admissionReview(debug, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: pod }));
    assert.deepEqual(JSON.parse(Buffer.from(e.json.response.patch, 'base64').toString()), [
      { op: 'replace', path: '/spec/ephemeralContainers/0/image', value: `${reg}/two:v2@${D2}` },
    ]);
    // A pinned pod needs no patch (reinvocation is a no-op).
    const again = await post('/mutate', admissionReview(podObject('pinned', [`${reg}/app:v1@${D1}`])));
    assert.deepEqual(Object.keys(again.json.response).sort(), ['allowed', 'uid']);
  });

  test('deletes, status updates and scale-downs are allowed without a look', async () => {
    const before = engine.checks.length;
    const pod = podObject('gone', [`${reg}/unsigned@${D1}`]);
    for (const over of [
      { operation: 'DELETE', oldObject: pod, object: null },
      { operation: 'UPDATE', subResource: 'status' },
    ]) {
      const r = await post('/validate', admissionReview(pod, over));
      assert.equal(r.json.response.allowed, true);
    }
    const d = deploymentObject('shrink', [`${reg}/unsigned@${D1}`]);
    const smaller = { ...d, spec: { ...d.spec, replicas: 1 } };
    assert.equal((await post('/validate', admissionReview(smaller, { operation: 'UPDATE', oldObject: d }))).json.response.allowed, true);
    assert.equal(engine.checks.length, before);
    assert.match(logs.at(-1)!.detail!, /scaling down from 2 to 1/);
  });

  test('a registry that hangs: a clear denial within the deadline, and fail-open engines are heard', async () => {
    const t0 = Date.now();
    const r = await post('/validate', admissionReview(podObject('slow', [`${reg}/hang@${D1}`, `${reg}/signed@${D1}`])));
    const ms = Date.now() - t0;
    assert.equal(r.json.response.allowed, false);
    assert.equal(
      r.json.response.status.message,
      `image policy denied 1 image:\nspec.containers[0].image: ${reg}/hang@${D1}: verification did not finish within the 400 ms admission deadline`,
    );
    assert.ok(ms >= 400 && ms < 2000, `answered in ${ms} ms`);
    const open = await post('/validate', admissionReview(podObject('open', [`${reg}/failopen@${D1}`])));
    assert.equal(open.json.response.allowed, true);
    assert.match(open.json.response.warnings[0], /fails open/);
    // Mutation of a hanging registry: no patch, in time.
    const t1 = Date.now();
    const m = await post('/mutate', admissionReview(podObject('slow', [`${reg}/hang:v1`])));
    assert.equal(m.json.response.allowed, true);
    assert.equal(m.json.response.patch, undefined);
    assert.ok(Date.now() - t1 < 2000);
  });

  test('an engine that crashes: a denial, and the server keeps serving', async () => {
    const r = await post('/validate', admissionReview(podObject('boom', [`${reg}/crash@${D1}`])));
    assert.equal(r.json.response.allowed, false);
    assert.match(r.json.response.status.message, /internal error while verifying the image/);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).status, 200);
  });

  test('bad input: a clear 4xx with a JSON body, or a review denial with 400 semantics when the uid is known', async () => {
    const call = (body: string | Buffer, headers: Record<string, string> = {}, path = '/validate') =>
      httpsCall(`${srv.url}${path}`, { ca: tls.ca, body, headers });
    const notJson = await call('{"kind": "AdmissionReview", ');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.code, 'ERR_JSON_PARSE');
    const noReq = await call(JSON.stringify({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }));
    assert.equal(noReq.status, 400);
    assert.match(noReq.json.message, /malformed AdmissionReview: request is missing/);
    const bad = admissionReview(podObject('x', ['a']), { operation: 'EXPLODE' });
    const withUid = await call(JSON.stringify(bad));
    assert.equal(withUid.status, 200);
    assert.equal(withUid.json.response.uid, (bad.request as { uid: string }).uid);
    assert.equal(withUid.json.response.allowed, false);
    assert.equal(withUid.json.response.status.code, 400);
    assert.match(withUid.json.response.status.message, /operation "EXPLODE"/);
    const unknownKind = await call(JSON.stringify(admissionReview({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } })));
    assert.equal(unknownKind.json.response.allowed, false);
    assert.match(unknownKind.json.response.status.message, /unsupported kind v1 Secret/);
    assert.equal((await call('{}', { 'content-type': 'text/plain' })).status, 415);
    const deep = await call(`${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`);
    assert.equal(deep.status, 400);
    const huge = await call(Buffer.alloc((3 << 20) + 1, 0x20));
    assert.equal(huge.status, 413);
    assert.equal(huge.json.code, 'ERR_BODY_TOO_LARGE');
    const many = podObject(
      'many',
      Array.from({ length: 5000 }, (_, i) => `${reg}/signed${i}@${D1}`),
    );
    const manyR = await call(JSON.stringify(admissionReview(many)));
    assert.equal(manyR.json.response.allowed, false);
    assert.match(manyR.json.response.status.message, /more than 256 container images/);
    assert.equal((await httpsCall(`${srv.url}/validate`, { ca: tls.ca })).status, 405);
    assert.equal((await httpsCall(`${srv.url}/nope`, { ca: tls.ca })).status, 404);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).json.status, 'ok');
    assert.equal((await httpsCall(`${srv.url}/readyz`, { ca: tls.ca })).json.generation, 'g1');
  });

  test('the certificate is reloaded when its files change; a broken pair keeps the old one', async () => {
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).peerCN, 'webhook.waxseal-system.svc');
    const next = writeTls(dir, 'rotated');
    // As a Secret mount does it: new files renamed over the old ones.
    copyFileSync(next.certFile, `${tls.certFile}.tmp`);
    copyFileSync(next.keyFile, `${tls.keyFile}.tmp`);
    renameSync(`${tls.certFile}.tmp`, tls.certFile);
    renameSync(`${tls.keyFile}.tmp`, tls.keyFile);
    assert.equal(srv.tls.check(), true);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).peerCN, 'rotated.waxseal-system.svc');
    // A certificate whose key is not there yet: not applied.
    const third = writeTls(dir, 'third');
    copyFileSync(third.certFile, tls.certFile);
    assert.equal(srv.tls.check(), false);
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).peerCN, 'rotated.waxseal-system.svc');
    copyFileSync(third.keyFile, tls.keyFile);
    // The watch may have applied it already; either way the new pair serves.
    srv.tls.check();
    assert.equal((await httpsCall(`${srv.url}/healthz`, { ca: tls.ca })).peerCN, 'third.waxseal-system.svc');
  });
});

describe('policy folder source and readiness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-webhook-src-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A loader standing in for loadPolicyStore: YAML documents must have a kind. */
  const load = (docs: PolicyDocument[]) => {
    const kinds: string[] = [];
    for (const d of docs) {
      const y = parseYaml(d.text) as { kind?: string };
      if (!y?.kind) throw new Error(`${d.name}: a document without kind`);
      kinds.push(y.kind);
    }
    return { generation: JSON.stringify(docs.map((d) => d.text)).length + kinds.join(','), kinds };
  };

  test('not ready until policies load; a bad edit keeps the last good store; edits reach the engine', async () => {
    const policies = join(dir, 'policies');
    mkdirSync(policies);
    writeFileSync(join(policies, 'bad.yaml'), 'spec: {}\n');
    const tls = writeTls(dir);
    const source = new DirectorySource({ dir: policies, load, pollMs: 0 });
    await assert.rejects(source.start(), /bad.yaml: a document without kind/);
    const engine = new FakeEngine();
    source.onChange((s) => engine.setStore(s));
    const srv = await serveAdmission({ source, engine, tlsCert: tls.certFile, tlsKey: tls.keyFile, tlsPollMs: 0 });
    try {
      const ready = await httpsCall(`${srv.url}/readyz`, { ca: tls.ca });
      assert.equal(ready.status, 503);
      assert.match(ready.json.error, /bad.yaml/);
      const r = await postReview(`${srv.url}/validate`, tls.ca, admissionReview(podObject('p', [`${reg}/signed@${D1}`])));
      assert.equal(r.json.response.allowed, false);
      assert.equal(r.json.response.status.code, 503);
      assert.match(r.json.response.status.message, /policies are not loaded: bad.yaml/);
      // Fix the folder as kubelet does for a ConfigMap (a new file appears; hidden entries ignored).
      rmSync(join(policies, 'bad.yaml'));
      writeFileSync(join(policies, 'cip.yaml'), 'kind: ClusterImagePolicy\n');
      writeFileSync(join(policies, '..data'), 'ignored');
      assert.equal(source.reload(), true);
      assert.equal((await httpsCall(`${srv.url}/readyz`, { ca: tls.ca })).status, 200);
      assert.equal(engine.stores.length, 1);
      // A broken edit: the old store keeps serving, readiness stays, the error is reported.
      writeFileSync(join(policies, 'cip.yaml'), 'nokind: true\n');
      assert.equal(source.reload(), false);
      const st = await httpsCall(`${srv.url}/readyz`, { ca: tls.ca });
      assert.equal(st.status, 200);
      assert.match(st.json.error, /cip.yaml: a document without kind/);
      assert.equal(source.current()!.kinds[0], 'ClusterImagePolicy');
      // The watch picks up a good edit without being asked.
      writeFileSync(join(policies, 'cip.yaml'), 'kind: ClusterImagePolicy\nmetadata: {name: b}\n');
      const until = Date.now() + 5000;
      while (engine.stores.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.equal(engine.stores.length, 2, 'fs.watch reloaded the folder');
    } finally {
      await srv.close();
      await source.close();
    }
  });

  test('requiring a namespace label: opted-out namespaces are not judged; the flag needs namespace lookups', async () => {
    const tls = writeTls(dir, 'ns');
    const engine = new FakeEngine();
    const source = new StaticSource({ generation: 'g' });
    const base = { source, engine, tlsCert: tls.certFile, tlsKey: tls.keyFile, tlsPollMs: 0 };
    const include = { key: 'policy.sigstore.dev/include', value: 'true' };
    await assert.rejects(serveAdmission({ ...base, requireNamespaceLabel: include }), /needs namespace lookups/);
    const labels: Record<string, Record<string, string>> = { 'team-a': { 'policy.sigstore.dev/include': 'true' }, 'team-b': {} };
    const srv = await serveAdmission({ ...base, requireNamespaceLabel: include, namespaceLabels: async (ns) => labels[ns] });
    try {
      const pod = podObject('p', [`${reg}/unsigned@${D1}`]);
      assert.equal((await postReview(`${srv.url}/validate`, tls.ca, admissionReview(pod, {}, 'team-a'))).json.response.allowed, false);
      assert.equal((await postReview(`${srv.url}/validate`, tls.ca, admissionReview(pod, {}, 'team-b'))).json.response.allowed, true);
      // A namespace the API does not know is judged (fail closed).
      assert.equal((await postReview(`${srv.url}/validate`, tls.ca, admissionReview(pod, {}, 'team-c'))).json.response.allowed, false);
    } finally {
      await srv.close();
    }
  });
});
