// The registry client against a registry that misbehaves: wrong digests, oversize answers,
// redirects to other hosts, unusable challenges, transient failures, silence. Each must end in
// a clear WaxsealError naming the check, never a crash or a hang. (docker-registry cannot be made
// to misbehave, so a small node:http server plays the registry here.)
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { rejectsWithCode } from '@waxseal/testkit';
import { MEDIA_TYPES, RegistryClient, digestOf, parseChallenge, serializeIndex } from '../src/index.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ host: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const bytes = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(bytes);
};

const manifestBytes = new TextEncoder().encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2 },
    layers: [],
  }),
);
const otherBytes = new TextEncoder().encode(new TextDecoder().decode(manifestBytes).replace('"layers":[]', '"layers": []'));
const blob = new TextEncoder().encode('the blob behind the redirect');

describe('a misbehaving registry', { timeout: 60_000 }, () => {
  let reg: { host: string; server: Server };
  let storage: { host: string; server: Server };
  const seenByStorage: (string | undefined)[] = [];
  let flaky = 0;
  let tokenRequests: string[] = [];

  before(async () => {
    storage = await serve((req, res) => {
      seenByStorage.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(blob);
    });
    reg = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const p = url.pathname;
      const wantBasic = `Basic ${Buffer.from('alice:secret').toString('base64')}`;
      if (p === '/token') {
        tokenRequests.push(url.search);
        if (req.headers.authorization !== wantBasic) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] });
        return json(res, 200, { token: 'tok-123' });
      }
      if (p.startsWith('/v2/bearer/')) {
        if (req.headers.authorization !== 'Bearer tok-123') {
          return json(
            res,
            401,
            { errors: [{ code: 'UNAUTHORIZED' }] },
            {
              'www-authenticate': `Bearer realm="http://${reg.host}/token",service="test-registry",scope="repository:bearer/app:pull"`,
            },
          );
        }
        return json(res, 200, manifestBytes, { 'content-type': MEDIA_TYPES.ociManifest });
      }
      if (p.startsWith('/v2/nochallenge/')) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] });
      if (p.startsWith('/v2/redirect/')) {
        if (req.headers.authorization !== wantBasic) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="test"' });
        res.writeHead(307, { location: `http://${storage.host}/bucket/object?sig=1` });
        return res.end();
      }
      if (p === `/v2/wrong/manifests/${digestOf(manifestBytes)}`)
        return json(res, 200, otherBytes, { 'content-type': MEDIA_TYPES.ociManifest });
      if (p === '/v2/wrong/manifests/v1') {
        return json(res, 200, otherBytes, { 'content-type': MEDIA_TYPES.ociManifest, 'docker-content-digest': digestOf(manifestBytes) });
      }
      if (p === '/v2/big/manifests/v1') {
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, 'content-length': String(64 << 20) });
        return res.end();
      }
      if (p === '/v2/big/manifests/v2') {
        // No Content-Length: the body just keeps coming.
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
        const chunk = Buffer.alloc(1 << 20, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 64 && res.write(chunk)) sent++;
          if (sent < 64) res.once('drain', pump);
          else res.end();
        };
        res.on('error', () => undefined);
        return pump();
      }
      if (p.startsWith('/v2/crowded/referrers/')) {
        const manifests = Array.from({ length: 5000 }, (_, i) => ({
          mediaType: MEDIA_TYPES.ociManifest,
          digest: `sha256:${i.toString(16).padStart(64, '0')}`,
          size: 100,
          artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        }));
        return json(res, 200, serializeIndex({ schemaVersion: 2, manifests }), { 'content-type': MEDIA_TYPES.ociIndex });
      }
      if (p === '/v2/flaky/manifests/v1') {
        flaky++;
        if (flaky < 3) return json(res, flaky === 1 ? 503 : 429, { errors: [] }, { 'retry-after': '0' });
        return json(res, 200, manifestBytes, { 'content-type': MEDIA_TYPES.ociManifest });
      }
      if (p === '/v2/silent/manifests/v1') return; // never answers
      json(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such thing' }] });
    });
  });
  after(() => {
    reg.server.closeAllConnections();
    storage.server.closeAllConnections();
    reg.server.close();
    storage.server.close();
  });

  const client = (o: ConstructorParameters<typeof RegistryClient>[0] = {}) =>
    new RegistryClient({ credentials: () => undefined, backoffMs: 5, ...o });
  const repo = (repository: string) => ({ registry: reg.host, repository });

  test('a manifest whose bytes do not hash to the requested digest is refused', async () => {
    await rejectsWithCode(client().getManifest(repo('wrong'), digestOf(manifestBytes)), 'ERR_VERIFY_ARTIFACT', {
      check: 'oci.digest',
      message: /wrong@sha256:.*digest sha256:[0-9a-f]{64} is not the requested/,
    });
    // By tag, the registry's own Docker-Content-Digest claim is held against the bytes.
    await rejectsWithCode(client().getManifest(repo('wrong'), 'v1'), 'ERR_VERIFY_ARTIFACT', { check: 'oci.digest' });
  });

  test('oversize manifests are refused, by declared length and by bytes received', async () => {
    await rejectsWithCode(client().getManifest(repo('big'), 'v1'), 'ERR_BODY_TOO_LARGE', { check: 'oci.size' });
    await rejectsWithCode(client().getManifest(repo('big'), 'v2'), 'ERR_BODY_TOO_LARGE', { check: 'oci.size' });
  });

  test('a referrers index with thousands of entries is refused', async () => {
    await rejectsWithCode(client().referrers(repo('crowded'), digestOf(manifestBytes)), 'ERR_BODY_TOO_LARGE', {
      check: 'oci.index-size',
      message: /5000 manifests, more than the 1000 accepted/,
    });
  });

  test('a blob redirect to another host gets no credentials, and the blob is still checked', async () => {
    const c = client({ credentials: () => ({ username: 'alice', password: 'secret' }) });
    const got = await c.getBlob(repo('redirect'), { digest: digestOf(blob), size: blob.length });
    assert.deepEqual(got, blob);
    assert.deepEqual(seenByStorage, [undefined], 'the storage host saw no Authorization header');
    await rejectsWithCode(c.getBlob(repo('redirect'), { digest: digestOf(manifestBytes), size: blob.length }), 'ERR_VERIFY_ARTIFACT', {
      check: 'oci.digest',
    });
  });

  test('401 without a usable challenge is a clear auth error', async () => {
    await rejectsWithCode(client().getManifest(repo('nochallenge'), 'v1'), 'ERR_REGISTRY_AUTH', {
      check: 'oci.auth',
      message: /401 without a usable WWW-Authenticate challenge/,
    });
  });

  test('bearer tokens from the challenge realm, for the repository scope', async () => {
    tokenRequests = [];
    const m = await client({ credentials: () => ({ username: 'alice', password: 'secret' }) }).getManifest(repo('bearer/app'), 'v1');
    assert.equal(m.digest, digestOf(manifestBytes));
    assert.equal(tokenRequests.length, 1);
    const q = new URLSearchParams(tokenRequests[0]);
    assert.equal(q.get('service'), 'test-registry');
    assert.equal(q.get('scope'), 'repository:bearer/app:pull');
    await rejectsWithCode(client().getManifest(repo('bearer/app'), 'v1'), 'ERR_REGISTRY_AUTH', /token service .* refused.*no credentials/);
  });

  test('429 and 5xx are retried with backoff', async () => {
    const seen: string[] = [];
    const m = await client({ onRequest: (method, url) => seen.push(`${method} ${url}`) }).getManifest(repo('flaky'), 'v1');
    assert.equal(m.digest, digestOf(manifestBytes));
    assert.equal(seen.length, 3);
  });

  test('a registry that never answers times out', async () => {
    const started = Date.now();
    await rejectsWithCode(
      client({ timeoutMs: 300, retries: 1 }).getManifest(repo('silent'), 'v1'),
      'ERR_UNAVAILABLE',
      /no complete answer/,
    );
    assert.ok(Date.now() - started < 5000);
  });

  test('404 is not found, with the registry message', async () => {
    await rejectsWithCode(client().getManifest(repo('absent'), 'v1'), 'ERR_NOT_FOUND', /NOT_FOUND no such thing/);
  });
});

test('WWW-Authenticate parsing', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.equal(parseChallenge('Negotiate abc'), undefined);
  assert.equal(parseChallenge(''), undefined);
  assert.equal(parseChallenge('Bearer service="x"'), undefined, 'a bearer challenge without realm is unusable');
  assert.equal(parseChallenge('Basic realm="a", Bearer realm="https://t"')?.scheme, 'bearer');
});
