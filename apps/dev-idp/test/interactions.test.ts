// The dev IdP's interaction routes refuse what is not a live login cleanly: 4xx, JSON for
// programs and a page for browsers, never a crash; the discovery document names no logout page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, listen, requestListener, type RunningServer } from '@waxseal/server';
import { useTempDir } from '@waxseal/testkit';
import { DevIdentityProvider } from '../src/dev-idp.ts';

const tmp = useTempDir('wx-idp-');
let server: RunningServer;
let issuer: string;

before(async () => {
  const router = new Router();
  server = await listen(requestListener({ router }));
  issuer = `${server.url}/oidc`;
  const idp = await DevIdentityProvider.create({ devMode: true, issuer, dataDir: tmp.dir });
  idp.mount(router);
});
after(() => server?.close());

test('an unknown interaction: 400 JSON for a program, a page with a strict CSP for a browser', async () => {
  const asProgram = await fetch(`${issuer}/interaction/nope`);
  assert.equal(asProgram.status, 400);
  assert.equal(((await asProgram.json()) as { error: string }).error, 'invalid_request');
  const asBrowser = await fetch(`${issuer}/interaction/nope`, { headers: { accept: 'text/html' } });
  assert.equal(asBrowser.status, 400);
  assert.match(asBrowser.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(await asBrowser.text(), /This login has expired/);
});

test('posts to an unknown interaction, oversize or not, are refused without a crash', async () => {
  for (const body of ['email=alice%40example.com', `email=${'a'.repeat(1 << 20)}`]) {
    const r = await fetch(`${issuer}/interaction/nope/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
  }
  const abort = await fetch(`${issuer}/interaction/nope/abort`, { method: 'POST' });
  assert.equal(abort.status, 400);
});

test('discovery: no logout endpoint (its stock pages are not served), the device flow is', async () => {
  const d = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  assert.equal(d.end_session_endpoint, undefined);
  assert.equal(typeof d.device_authorization_endpoint, 'string');
});
