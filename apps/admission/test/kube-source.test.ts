// The Kubernetes API source, against a DOUBLE of the API server: no Kubernetes API server (nor
// kind, k3s or envtest) is available on this machine, so a small HTTP server below speaks the
// parts of the API the source uses, in the API's own JSON: list (`{kind: XList, metadata:
// {resourceVersion}, items}`), watch (newline-delimited `{type, object}` events from a
// resourceVersion, BOOKMARKs, server-side close), merge-patch of `/status`, and reads of Secrets,
// ConfigMaps, ServiceAccounts and Namespaces with `Status` 404s. The client side is the real
// @kubernetes/client-node; the policies are loaded by the real @waxseal/policy loader.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { PolicyStore, Workload } from '@waxseal/policy';
import { KubeSource } from '../src/kube-source.ts';

type Obj = Record<string, any>;

/** The API server double: objects by path, a global resourceVersion, an event log for watches. */
class ApiDouble {
  rv = 100;
  readonly collections = new Map<string, Map<string, Obj>>(); // list path -> name -> object
  readonly singles = new Map<string, Obj>(); // object path -> object (core reads)
  readonly events: { path: string; rv: number; line: string }[] = [];
  readonly watchers = new Set<{ path: string; res: ServerResponse }>();
  readonly patches: { path: string; body: Obj; contentType: string }[] = [];
  readonly requests: string[] = [];
  readonly missing = new Set<string>(); // list paths answering 404 (CRD not installed)
  server!: Server;
  url = '';

  async start() {
    this.server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close() {
    for (const w of this.watchers) w.res.destroy();
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }

  put(listPath: string, o: Obj, type: 'ADDED' | 'MODIFIED' = 'ADDED') {
    const m = this.collections.get(listPath) ?? new Map<string, Obj>();
    this.collections.set(listPath, m);
    const rv = ++this.rv;
    const prev = m.get(o.metadata.name);
    const gen =
      prev && JSON.stringify(prev.spec) !== JSON.stringify(o.spec) ? (prev.metadata.generation ?? 1) + 1 : (prev?.metadata.generation ?? 1);
    const stored = {
      ...o,
      metadata: {
        uid: `uid-${o.metadata.name}`,
        creationTimestamp: '2024-05-01T00:00:00Z',
        ...o.metadata,
        generation: gen,
        resourceVersion: String(rv),
      },
    };
    m.set(o.metadata.name, stored);
    this.#emit(listPath, rv, { type: prev ? 'MODIFIED' : type, object: stored });
  }

  remove(listPath: string, name: string) {
    const o = this.collections.get(listPath)?.get(name);
    if (!o) return;
    this.collections.get(listPath)!.delete(name);
    const rv = ++this.rv;
    this.#emit(listPath, rv, { type: 'DELETED', object: { ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } } });
  }

  /** Ends every open watch, as the API server does at timeoutSeconds or on a restart. */
  dropWatches() {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  #emit(path: string, rv: number, ev: Obj) {
    const line = `${JSON.stringify(ev)}\n`;
    this.events.push({ path, rv, line });
    for (const w of this.watchers) if (w.path === path) w.res.write(line);
  }

  #status(res: ServerResponse, code: number, reason: string, message: string) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  }

  #handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url!, 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers.authorization !== 'Bearer test-token') return this.#status(res, 401, 'Unauthorized', 'Unauthorized');
    const path = url.pathname;
    if (req.method === 'GET' && this.missing.has(path))
      return this.#status(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (req.method === 'GET' && this.collections.has(path)) {
      if (url.searchParams.get('watch') === 'true') {
        const from = Number(url.searchParams.get('resourceVersion') || 0);
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        for (const e of this.events) if (e.path === path && e.rv > from) res.write(e.line);
        // A bookmark right away, as an API server may send when asked allowWatchBookmarks.
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'X', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } })}\n`,
        );
        const w = { path, res };
        this.watchers.add(w);
        res.on('close', () => this.watchers.delete(w));
        return;
      }
      const items = [...this.collections.get(path)!.values()];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(this.rv) }, items }));
      return;
    }
    const status = path.match(/^(.*)\/([^/]+)\/status$/);
    if (req.method === 'PATCH' && status) {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        this.patches.push({ path, body, contentType: String(req.headers['content-type']) });
        // Namespaced objects live in the cluster-wide list under their name.
        const listPath = status[1]!.replace(/\/namespaces\/[^/]+/, '');
        const o = this.collections.get(listPath)?.get(status[2]!);
        if (!o) return this.#status(res, 404, 'NotFound', `${status[2]} not found`);
        const rv = ++this.rv;
        const updated = { ...o, status: body.status, metadata: { ...o.metadata, resourceVersion: String(rv) } };
        this.collections.get(listPath)!.set(status[2]!, updated);
        this.#emit(listPath, rv, { type: 'MODIFIED', object: updated });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(updated));
      });
      return;
    }
    const single = this.singles.get(path);
    if (req.method === 'GET' && single) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(single));
      return;
    }
    this.#status(res, 404, 'NotFound', `${path} not found`);
  }
}

const CIPS = '/apis/policy.sigstore.dev/v1alpha1/clusterimagepolicies';
const TRS = '/apis/policy.sigstore.dev/v1alpha1/trustroots';
const IPS = '/apis/policy.waxseal.dev/v1alpha1/imagepolicies';

const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const cip = (name: string, authority: Obj, glob = 'registry.example/**') => ({
  apiVersion: 'policy.sigstore.dev/v1alpha1',
  kind: 'ClusterImagePolicy',
  metadata: { name },
  spec: { images: [{ glob }], authorities: [authority] },
});

async function until<T>(what: string, fn: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('policies from the Kubernetes API (against an API server double)', () => {
  const api = new ApiDouble();
  let source: KubeSource;
  const stores: PolicyStore[] = [];
  const logs: string[] = [];
  const keyPem = pem();
  before(async () => {
    await api.start();
    api.put(CIPS, cip('key-inline', { key: { data: keyPem } }));
    api.put(CIPS, cip('key-secret', { name: 'from-secret', key: { secretRef: { name: 'cosign-pub' } } }));
    api.put(CIPS, { ...cip('broken', { key: { data: 'not a key' } }) });
    api.collections.set(TRS, new Map());
    api.collections.set(IPS, new Map());
    api.put(IPS, {
      apiVersion: 'policy.waxseal.dev/v1alpha1',
      kind: 'ImagePolicy',
      metadata: { name: 'team-extra', namespace: 'team-a' },
      spec: { images: [{ glob: 'registry.example/team-a/**' }], authorities: [{ static: { action: 'pass' } }] },
    });
    api.singles.set('/api/v1/namespaces/waxseal-system/secrets/cosign-pub', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cosign-pub', namespace: 'waxseal-system' },
      data: { 'cosign.pub': Buffer.from(keyPem).toString('base64') },
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'double', server: api.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'c', cluster: 'double', user: 'u' }],
      currentContext: 'c',
    });
    source = new KubeSource({
      kubeConfig: kc,
      namespace: 'waxseal-system',
      retryMs: 100,
      resyncMs: 0,
      cacheTtlMs: 50,
      log: (e, d) => logs.push(`${e}: ${d}`),
    });
    source.onChange((s) => stores.push(s));
  });
  after(async () => {
    await source?.close();
    await api.close();
  });

  test('lists and loads the valid policies (secretRef keys read from the controller namespace); the invalid one is left out', async () => {
    const store = await source.start();
    assert.deepEqual(
      store.clusterPolicies.map((p) => p.name),
      ['key-inline', 'key-secret'],
    );
    const fromSecret = store.clusterPolicies.find((p) => p.name === 'key-secret')!;
    assert.equal(fromSecret.spec.authorities[0]!.key?.data?.trim(), keyPem.trim(), 'the Secret was inlined');
    assert.deepEqual(
      store.imagePolicies.map((p) => `${p.namespace}/${p.name}`),
      ['team-a/team-extra'],
    );
    assert.ok(api.requests.includes('GET /api/v1/namespaces/waxseal-system/secrets/cosign-pub'));
    assert.ok(
      logs.some((l) => /^invalid: ClusterImagePolicy\/broken: .*not a PEM public key/.test(l)),
      logs.join('\n'),
    );
    assert.equal(source.status().ready, true);
  });

  test('status conditions are written back: Ready True, or False with the validation message', async () => {
    await until('status patches', () => api.patches.length >= 4);
    await source.pendingWrites;
    const byName = (n: string) => api.patches.find((p) => p.path.endsWith(`/${n}/status`))!;
    for (const n of ['key-inline', 'key-secret']) {
      const p = byName(n);
      assert.equal(p.path, `${CIPS}/${n}/status`);
      assert.equal(p.contentType, 'application/merge-patch+json');
      assert.equal(p.body.status.observedGeneration, 1);
      assert.deepEqual(
        p.body.status.conditions.map((c: Obj) => [c.type, c.status, c.reason]),
        [['Ready', 'True', 'Loaded']],
      );
      assert.match(p.body.status.conditions[0].lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    const bad = byName('broken').body.status.conditions[0];
    assert.equal(bad.status, 'False');
    assert.equal(bad.reason, 'InvalidPolicy');
    assert.match(bad.message, /spec\.authorities\[0\]\.key\.data.*not a PEM public key/);
    assert.equal(byName('team-extra').path, '/apis/policy.waxseal.dev/v1alpha1/namespaces/team-a/imagepolicies/team-extra/status');
    // Our own status writes come back as MODIFIED events: they must not cause more writes.
    const n = api.patches.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(api.patches.length, n);
  });

  test('watch events reach the store: added, fixed, deleted; a dropped watch resumes from its resourceVersion', async () => {
    const seen = stores.length;
    api.put(CIPS, cip('added-later', { static: { action: 'fail', message: 'no' } }));
    const s1 = await until('the added policy', () =>
      stores.slice(seen).find((s) => s.clusterPolicies.some((p) => p.name === 'added-later')),
    );
    assert.equal(s1.clusterPolicies.length, 3);
    // Fixing the broken policy loads it and flips its status.
    api.put(CIPS, cip('broken', { key: { data: keyPem } }));
    await until('the fixed policy', () => source.current()!.clusterPolicies.some((p) => p.name === 'broken'));
    await until(
      'Ready True for the fix',
      () => api.patches.filter((p) => p.path.endsWith('/broken/status')).at(-1)?.body.status.conditions[0].status === 'True',
    );
    const fixed = api.patches.filter((p) => p.path.endsWith('/broken/status')).at(-1)!;
    assert.equal(fixed.body.status.observedGeneration, 2);
    // The API server ends every watch (timeoutSeconds, restart): the source watches on.
    const lists = api.requests.filter((r) => r.startsWith(`GET ${CIPS}?`) && !r.includes('watch=true')).length;
    api.dropWatches();
    await new Promise((r) => setTimeout(r, 100));
    api.remove(CIPS, 'added-later');
    await until('the deletion', () => !source.current()!.clusterPolicies.some((p) => p.name === 'added-later'));
    const rewatch = api.requests.filter((r) => r.startsWith(`GET ${CIPS}?`) && r.includes('watch=true'));
    assert.ok(rewatch.length >= 2, 'watched again');
    assert.match(rewatch.at(-1)!, /resourceVersion=\d+/);
    assert.equal(
      api.requests.filter((r) => r.startsWith(`GET ${CIPS}?`) && !r.includes('watch=true')).length,
      lists,
      'resumed without re-listing',
    );
    assert.notEqual(source.current()!.generation, s1.generation);
  });

  test('namespace labels, workload pull secrets (pod and service account) and signature pull secrets', async () => {
    const cfg = (user: string) => ({ auths: { 'registry.example': { auth: Buffer.from(`${user}:pw`).toString('base64') } } });
    const secret = (name: string, user: string, type = 'kubernetes.io/dockerconfigjson') => ({
      apiVersion: 'v1',
      kind: 'Secret',
      type,
      metadata: { name, namespace: 'team-a' },
      data: {
        [type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson']: Buffer.from(JSON.stringify(cfg(user))).toString(
          'base64',
        ),
      },
    });
    api.singles.set('/api/v1/namespaces/team-a', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'team-a', labels: { 'policy.sigstore.dev/include': 'true' } },
    });
    api.singles.set('/api/v1/namespaces/team-a/secrets/pod-cred', secret('pod-cred', 'pod'));
    api.singles.set('/api/v1/namespaces/team-a/secrets/sa-cred', secret('sa-cred', 'sa', 'kubernetes.io/dockercfg'));
    api.singles.set('/api/v1/namespaces/team-a/serviceaccounts/builder', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'builder', namespace: 'team-a' },
      imagePullSecrets: [{ name: 'sa-cred' }, { name: 'gone' }],
    });
    const signal = AbortSignal.timeout(5000);
    assert.deepEqual(await source.namespaceLabels('team-a', signal), { 'policy.sigstore.dev/include': 'true' });
    assert.equal(await source.namespaceLabels('nope', signal), undefined);
    const w = { namespace: 'team-a', serviceAccountName: 'builder', imagePullSecrets: ['pod-cred'] } as Workload;
    assert.deepEqual(await source.pullSecrets(w, signal), [cfg('pod'), cfg('sa')]);
    assert.deepEqual(await source.pullSecrets({ ...w, serviceAccountName: 'missing', imagePullSecrets: [] }, signal), []);
    assert.deepEqual(await source.readPullSecret('team-a', 'pod-cred', signal), cfg('pod'));
    assert.equal(await source.readPullSecret('team-a', 'gone', signal), undefined);
    // An API that does not answer in time: the caller's deadline wins.
    const hung = createServer(() => {});
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'h', server: `http://127.0.0.1:${(hung.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'c', cluster: 'h', user: 'u' }],
        currentContext: 'c',
      });
      const slow = new KubeSource({ kubeConfig: kc, writeStatus: false });
      const t0 = Date.now();
      await assert.rejects(
        slow.namespaceLabels('team-a', AbortSignal.timeout(200)),
        /reading namespace team-a: the admission deadline passed/,
      );
      assert.ok(Date.now() - t0 < 2000);
      await slow.close();
    } finally {
      hung.closeAllConnections();
      hung.close();
    }
  });

  test('a CRD that is not installed counts as empty; an API that refuses leaves the source not ready, with the reason', async () => {
    const other = new ApiDouble();
    await other.start();
    try {
      other.collections.set(CIPS, new Map());
      other.put(CIPS, cip('only', { static: { action: 'pass' } }));
      other.collections.set(TRS, new Map());
      other.missing.add(IPS);
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'o', server: other.url, skipTLSVerify: true }],
        users: [{ name: 'u', token: 'test-token' }],
        contexts: [{ name: 'c', cluster: 'o', user: 'u' }],
        currentContext: 'c',
      });
      const s = new KubeSource({ kubeConfig: kc, retryMs: 50, resyncMs: 0, writeStatus: false });
      const store = await s.start();
      assert.deepEqual(
        store.clusterPolicies.map((p) => p.name),
        ['only'],
      );
      assert.equal(store.imagePolicies.length, 0);
      await s.close();
      const refused = new KubeConfig();
      refused.loadFromOptions({
        clusters: [{ name: 'o', server: other.url, skipTLSVerify: true }],
        users: [{ name: 'u', token: 'wrong' }],
        contexts: [{ name: 'c', cluster: 'o', user: 'u' }],
        currentContext: 'c',
      });
      const r = new KubeSource({ kubeConfig: refused, retryMs: 50, resyncMs: 0 });
      await assert.rejects(r.start(), /listing \w+ failed/);
      assert.equal(r.status().ready, false);
      assert.match(r.status().error!, /listing/);
      await r.close();
    } finally {
      await other.close();
    }
  });
});

describe('the webhook with policies from the Kubernetes API (API server double)', () => {
  test('--kube with --require-namespace-label: opted-in namespaces are judged, others are not; pull secrets are looked up', async () => {
    const { startAdmissionServer } = await import('../src/server.ts');
    const { admissionReview, podObject, postReview, writeTls } = await import('./webhook-fixture.ts');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const api = new ApiDouble();
    await api.start();
    const dir = mkdtempSync(join(tmpdir(), 'wx-kube-webhook-'));
    api.put(CIPS, cip('frozen', { static: { action: 'fail', message: 'frozen' } }, 'frozen.example/**'));
    api.collections.set(TRS, new Map());
    api.collections.set(IPS, new Map());
    api.singles.set('/api/v1/namespaces/team-a', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'team-a', labels: { 'policy.sigstore.dev/include': 'true' } },
    });
    api.singles.set('/api/v1/namespaces/team-b', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b', labels: {} } });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'double', server: api.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'c', cluster: 'double', user: 'u' }],
      currentContext: 'c',
    });
    const tls = writeTls(dir);
    const srv = await startAdmissionServer({
      kube: { kubeConfig: kc, namespace: 'waxseal-system', resyncMs: 0 },
      requireNamespaceLabel: true,
      tlsCert: tls.certFile,
      tlsKey: tls.keyFile,
      tlsPollMs: 0,
    });
    try {
      assert.equal(srv.source.status().ready, true);
      const pod = podObject(
        'p',
        [`frozen.example/app@sha256:${'e'.repeat(64)}`],
        { app: 'p' },
        { imagePullSecrets: [{ name: 'regcred' }] },
      );
      const a = await postReview(`${srv.url}/validate`, tls.ca, admissionReview(pod, {}, 'team-a'));
      assert.equal(a.json.response.allowed, false);
      assert.match(a.json.response.status.message, /ClusterImagePolicy frozen.*frozen/);
      assert.ok(api.requests.includes('GET /api/v1/namespaces/team-a/serviceaccounts/default'), 'the service account was read');
      assert.ok(api.requests.includes('GET /api/v1/namespaces/team-a/secrets/regcred'), 'the pod pull secret was read');
      const b = await postReview(`${srv.url}/validate`, tls.ca, admissionReview(pod, {}, 'team-b'));
      assert.equal(b.json.response.allowed, true, 'team-b has not opted in');
      await until('the Ready status', () => api.patches.some((p) => p.path.endsWith('/frozen/status')));
    } finally {
      await srv.close();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
