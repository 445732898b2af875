import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'node:http';
import { throwsWithCode } from '@waxseal/testkit';
import { Router, decodeUriComponentSafe, json, listen, parseRequestJson, requestListener, type RunningServer } from './http.ts';

/** Sends raw request bytes (any request target, even one fetch would refuse); returns status line and body. */
function raw(port: number, head: string, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => c.end(`${head}\r\nHost: x\r\nConnection: close\r\n\r\n${body}`));
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', () => resolve({ status: Number(out.split(' ')[1]), body: out.slice(out.indexOf('\r\n\r\n') + 4) }));
  });
}

/** POST with a chunked body (no content-length), sent in pieces. */
function postChunked(url: string, pieces: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let out = '';
      res.on('data', (d: Buffer) => (out += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out }));
    });
    req.on('error', reject);
    for (const p of pieces) req.write(p);
    req.end();
  });
}

async function withServer(fn: (s: RunningServer) => Promise<void>): Promise<void> {
  const router = new Router();
  router.get('/entries/:id', (req) => json(200, { id: req.params.id }));
  router.post('/json', async (req) => json(200, { value: await req.json() }));
  router.post('/small', async (req) => json(200, { value: await req.json(16) }));
  const s = await listen(requestListener({ router, maxBodyBytes: 1 << 20, onInternalError: () => {} }));
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

function errorOf(r: { body: string }): { code: string; message: string } {
  return JSON.parse(r.body) as { code: string; message: string };
}

test('malformed percent-escapes and request targets are 400 with a JSON body, never 500 or a crash', async () => {
  await withServer(async (s) => {
    for (const path of ['/entries/%ZZ', '/entries/%E0%A4%A', '/entries/%', '/entries/%C0%80']) {
      const r = await fetch(`${s.url}${path}`);
      assert.equal(r.status, 400, path);
      const e = (await r.json()) as { code: string; message: string };
      assert.equal(e.code, 'ERR_INVALID_INPUT');
      assert.match(e.message, /malformed percent-escape/);
    }
    assert.deepEqual(await (await fetch(`${s.url}/entries/a%2Fb%20c`)).json(), { id: 'a/b c' });
    // Targets the URL parser refuses used to throw inside the listener and end the process.
    for (const target of ['http://[/', 'http://%zz/x']) {
      const r = await raw(s.port, `GET ${target} HTTP/1.1`);
      assert.equal(r.status, 400, target);
      assert.equal(errorOf(r).code, 'ERR_INVALID_INPUT');
    }
    assert.equal((await fetch(`${s.url}/entries/1`)).status, 200);
  });
});

test('req.json(): depth, values, size and syntax limits, also on chunked bodies', async () => {
  await withServer(async (s) => {
    const post = (path: string, body: string) =>
      fetch(`${s.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.deepEqual(await (await post('/json', '{"a":[1,{"b":"[[["}]}')).json(), { value: { a: [1, { b: '[[[' }] } });
    const cases: [string, string, number, string, RegExp][] = [
      ['/json', `${'['.repeat(65)}${']'.repeat(65)}`, 400, 'ERR_INVALID_INPUT', /nests deeper than 64 levels/],
      ['/json', `[${'0,'.repeat(20_000)}0]`, 400, 'ERR_INVALID_INPUT', /more than 16384 values/],
      ['/json', '{"a":', 400, 'ERR_JSON_PARSE', /request body is not valid JSON/],
      ['/small', '[1,2,3,4,5,6,7,8,9]', 413, 'ERR_BODY_TOO_LARGE', /16 bytes/],
    ];
    for (const [path, body, status, code, message] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, status, body.slice(0, 20));
      const e = (await r.json()) as { code: string; message: string };
      assert.equal(e.code, code);
      assert.match(e.message, message);
    }
    // Refused from the chunks as they arrive, with no length announced.
    const r = await postChunked(`${s.url}/json`, ['['.repeat(40), '['.repeat(40), ']'.repeat(80)]);
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).code, 'ERR_INVALID_INPUT');
    const ok = await postChunked(`${s.url}/json`, ['{"a":"\\', '"[[["}']);
    assert.deepEqual(JSON.parse(ok.body), { value: { a: '"[[[' } });
  });
});

test('the helpers', () => {
  assert.equal(decodeUriComponentSafe('a%20b'), 'a b');
  throwsWithCode(() => decodeUriComponentSafe('%E0%A4%A', 'the entry ID'), 'ERR_INVALID_INPUT', /the entry ID has a malformed/);
  assert.deepEqual(parseRequestJson(new TextEncoder().encode('{"a":1}')), { a: 1 });
  throwsWithCode(() => parseRequestJson(new TextEncoder().encode('[[]]'), 3), 'ERR_BODY_TOO_LARGE');
  throwsWithCode(() => parseRequestJson(new TextEncoder().encode(`${'['.repeat(65)}${']'.repeat(65)}`)), 'ERR_INVALID_INPUT');
});
