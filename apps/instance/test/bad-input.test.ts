// The standing bad-input suite (Waxseal issue 15): every HTTP route of the dev instance (CA, TSA,
// transparency log v1/v2/tiles, TUF and trust documents, dev IdP) and the standalone hot paths
// (the TSA's own listener, the log's front-end workers) answer malformed JSON, over-deep JSON,
// oversize bodies, malformed percent-escapes, bad request targets and wrong content types with a
// 4xx and a JSON body: never a 5xx, never a dropped connection. Requests go over raw sockets so
// that any target and any header can be sent exactly as an attacker would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { generateSigner, selfSignedRoot, tsaLeaf } from '@waxseal/keys';
import { startLogServer } from '@waxseal/rekor';
import { DEV_TOKEN_GRANT } from '../../dev-idp/src/dev-idp.ts';
import { useDevStack } from './helpers.ts';
import { startTsaServer } from '../../../packages/tsa/src/service.ts';

interface Exchange {
  method: string;
  target: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Announce this Content-Length but send no body (oversize tests: the server must refuse on the header). */
  declaredLength?: number;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function dechunk(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(raw.subarray(at, eol).toString(), 16);
    if (!(size > 0)) break;
    out.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** One request on its own connection (Connection: close); the answer is read until the server closes. */
function exchange(port: number, x: Exchange): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = x.body === undefined ? undefined : Buffer.from(x.body);
    const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, Connection: 'close', ...x.headers };
    const length = x.declaredLength ?? body?.length;
    if (length !== undefined) headers['Content-Length'] = String(length);
    const head = `${x.method} ${x.target} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    const chunks: Buffer[] = [];
    // No half-close: node:http drops a pending answer when the client ends its side first.
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(head);
      if (body && x.declaredLength === undefined) sock.write(body);
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => {}); // a refused upload may be cut short; the answer is what counts
    sock.on('close', () => {
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(new Error(`${x.method} ${x.target}: the connection closed without an answer`));
        return;
      }
      const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
      const hs: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest: Buffer = raw.subarray(end + 4);
      if (hs['transfer-encoding'] === 'chunked') rest = dechunk(rest);
      else if (hs['content-length'] !== undefined) rest = rest.subarray(0, Number(hs['content-length']));
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers: hs, body: rest.toString('utf8') });
    });
  });
}

function describeX(x: Exchange): string {
  const b = x.declaredLength !== undefined ? `(declared ${x.declaredLength} bytes)` : x.body ? `(${Buffer.from(x.body).length} bytes)` : '';
  return `${x.method} ${x.target.slice(0, 80)} ${x.headers?.['Content-Type'] ?? ''} ${b}`;
}

/** A 4xx with a JSON body. */
async function refused(port: number, x: Exchange): Promise<void> {
  const a = await exchange(port, x);
  const what = `${describeX(x)} -> ${a.status} ${a.body.slice(0, 160)}`;
  assert.ok(a.status >= 400 && a.status < 500, what);
  assert.match(a.headers['content-type'] ?? '', /^application\/json/, what);
  assert.doesNotThrow(() => JSON.parse(a.body), what);
}

/** Never a 5xx; a refusal comes as JSON (a route may ignore what it does not read, e.g. a stray query). */
async function neverServerError(port: number, x: Exchange): Promise<void> {
  const a = await exchange(port, x);
  const what = `${describeX(x)} -> ${a.status} ${a.body.slice(0, 160)}`;
  assert.ok(a.status >= 200 && a.status < 500, what);
  if (a.status >= 400) assert.match(a.headers['content-type'] ?? '', /^application\/json/, what);
}

const JSON_CT = { 'Content-Type': 'application/json' };
const FORM_CT = { 'Content-Type': 'application/x-www-form-urlencoded' };
const BAD_ESCAPES = ['%ZZ', '%E0%A4%A', '%', '%C0%80'];
const deepSmall = `${'['.repeat(200)}${']'.repeat(200)}`;
const deep4MB = (() => {
  const b = new Uint8Array(4_000_000);
  b.fill(0x5b, 0, 2_000_000);
  b.fill(0x5d, 2_000_000);
  return b;
})();
const manyValues = `[${'0,'.repeat(20_000)}0]`;
const invalidUtf8 = Uint8Array.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d);

/** Bad JSON bodies for a JSON POST route whose body limit is `limit` bytes. */
function jsonBodyCases(path: string, limit: number): Exchange[] {
  const post = (body: string | Uint8Array, headers: Record<string, string> = JSON_CT): Exchange => ({
    method: 'POST',
    target: path,
    headers,
    body,
  });
  const cases: Exchange[] = [
    post('{"a":'),
    post('{"a":1}}'),
    post(''),
    post(deepSmall),
    post(invalidUtf8),
    post('{}', { 'Content-Type': 'text/plain' }),
    post('{}', { 'Content-Type': 'application/x-www-form-urlencoded' }),
    post('{}', { 'Content-Type': 'application/json; charset="' }),
    { method: 'POST', target: path, headers: JSON_CT, declaredLength: 64 << 20 },
    ...BAD_ESCAPES.map((e) => ({ ...post('{}'), target: `${path}/${e}` })),
    { ...post('{"a":'), target: `${path}?x=%ZZ&%E0%A4%A` },
  ];
  // Bodies the route reads to the end (larger ones are refused on their Content-Length, above).
  if (limit >= manyValues.length) cases.push(post(manyValues));
  if (limit >= deep4MB.length) cases.push(post(deep4MB));
  return cases;
}

if (process.platform === 'win32') {
  test('bad input', { skip: 'POSIX only' }, () => {});
} else {
  let port: number;
  const dev = useDevStack('wx-bad-input-', { ready: ({ stack }) => (port = Number(new URL(stack.url).port)) });

  test('JSON POST routes of the CA, the TSA and the log', async () => {
    const routes: [string, number][] = [
      ['/api/v2/signingCert', 4 << 20],
      ['/api/v1/timestamp', 1024],
      ['/api/v2/log/entries', 256 << 10],
      ['/api/v1/log/entries', 10 << 20],
      ['/api/v1/log/entries/retrieve', 10 << 20],
      ['/api/v1/index/retrieve', 1 << 20],
    ];
    for (const [path, limit] of routes) for (const x of jsonBodyCases(path, limit)) await refused(port, x);
    // The TSA's DER form too.
    await refused(port, {
      method: 'POST',
      target: '/api/v1/timestamp',
      headers: { 'Content-Type': 'application/timestamp-query' },
      body: '{}',
    });
  });

  test('GET routes: malformed escapes in the path and the query, unknown paths below each route', async () => {
    const routes = [
      '/api/v2/trustBundle',
      '/api/v2/configuration',
      '/api/v1/rootCert',
      '/healthz',
      '/api/v1/timestamp/certchain',
      '/api/v1/log',
      '/api/v1/log/publicKey',
      '/api/v1/log/proof',
      '/api/v1/log/entries',
      '/checkpoint',
      '/tile/0/000',
      '/tuf/timestamp.json',
      '/tuf/1.root.json',
      '/trusted_root.json',
      '/signing_config.json',
      '/oidc/.well-known/openid-configuration',
      '/oidc/jwks',
      '/ci/.well-known/openid-configuration',
    ];
    for (const r of routes) {
      await neverServerError(port, { method: 'GET', target: `${r}?%ZZ=%E0%A4%A&logIndex=%ZZ&firstSize=%&lastSize=%C0%80` });
      for (const e of BAD_ESCAPES) await refused(port, { method: 'GET', target: `${r}/${e}` });
    }
    const targets = [
      ...BAD_ESCAPES.map((e) => `/api/v1/log/entries/${e}`),
      '/api/v1/log/entries?logIndex=%ZZ',
      '/api/v1/log/entries?logIndex=-1',
      '/api/v1/log/proof?lastSize=%E0%A4%A',
      '/api/v1/log/proof?firstSize=2&lastSize=1',
      '/tile/%ZZ/000',
      '/tile/0/x%E0%A4%A',
      '/tuf/%ZZ',
      '/tuf/targets/%E0%A4%A',
      '/tuf/..%2F..%2Fetc%2Fpasswd',
      '/oidc/%ZZ',
      '/oidc/auth?client_id=%ZZ',
      '/ci/%E0%A4%A',
      '/%ZZ',
      // Request targets no URL parser accepts (once a crash of the whole process).
      'http://[/',
      'http://%zz/api/v1/log',
    ];
    for (const t of targets) await refused(port, { method: 'GET', target: t });
    // Methods a route does not serve.
    await refused(port, { method: 'PUT', target: '/api/v2/signingCert', headers: JSON_CT, body: '{}' });
    await refused(port, { method: 'DELETE', target: '/api/v1/log/entries/%ZZ' });
  });

  test('dev IdP: bad forms, over-deep claims, wrong content types, oversize bodies', async () => {
    for (const path of ['/oidc/token', '/ci/token', '/oidc/device/auth']) {
      const post = (body: string, headers: Record<string, string> = FORM_CT): Exchange => ({ method: 'POST', target: path, headers, body });
      await refused(port, post('grant_type=%ZZ&client_id=%E0%A4%A'));
      await refused(port, post(`grant_type=${encodeURIComponent(DEV_TOKEN_GRANT)}&client_id=%ZZ`));
      await refused(port, post('{"a":', JSON_CT));
      await refused(port, post('x', { 'Content-Type': 'text/plain' }));
      await refused(port, { method: 'POST', target: path, headers: FORM_CT, declaredLength: 64 << 20 });
    }
    const claims = (c: string) => `grant_type=${encodeURIComponent(DEV_TOKEN_GRANT)}&client_id=sigstore&claims=${encodeURIComponent(c)}`;
    for (const c of [deepSmall, '{"sub":', `{"sub":"x","a":${'['.repeat(100)}${']'.repeat(100)}}`])
      await refused(port, { method: 'POST', target: '/ci/token', headers: FORM_CT, body: claims(c) });
  });

  test('standalone hot paths: the TSA listener and the log front-end workers', async () => {
    const tsaSigner = generateSigner('ecdsa-p256');
    // One instant for both: the leaf's validity must nest inside the root's, to the second.
    const notAfter = new Date(Date.now() + 86_400_000);
    const root = await selfSignedRoot(tsaSigner, { organization: 'test', commonName: 'TSA root', notAfter });
    const leafSigner = generateSigner('ecdsa-p256');
    const leaf = await tsaLeaf(leafSigner.publicKeySpki, tsaSigner, root, {
      organization: 'test',
      commonName: 'TSA',
      notAfter,
    });
    const tsa = await startTsaServer({ signer: leafSigner, chain: [leaf, root] });
    const log = await startLogServer({
      dataDir: join(dev.dir, 'log'),
      signer: generateSigner('ed25519'),
      hostname: 'localhost',
      httpWorkers: 1,
    });
    try {
      for (const x of jsonBodyCases('/api/v1/timestamp', 1024)) await refused(tsa.port, x);
      for (const [path, limit] of [
        ['/api/v2/log/entries', 256 << 10],
        ['/api/v1/log/entries', 10 << 20],
        ['/api/v1/index/retrieve', 1 << 20],
      ] as const) {
        for (const x of jsonBodyCases(path, limit)) await refused(log.port, x);
      }
      for (const e of BAD_ESCAPES) await refused(log.port, { method: 'GET', target: `/api/v1/log/entries/${e}` });
      await refused(log.port, { method: 'GET', target: 'http://[/' });
    } finally {
      await tsa.close();
      await log.close();
    }
  });
}
