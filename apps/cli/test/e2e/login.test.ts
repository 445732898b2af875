// `waxseal login` when it cannot end well: the identity provider down or broken (exit 5 when it
// cannot be reached, 4 when it answers wrongly), and a provider whose tokens carry no usable
// e-mail identity (refused at login, exit 4, nothing cached, rather than at sign-blob later).
// The provider without e-mail addresses is a real oidc-provider, driven with its own login pages.
// The browser flow's happy path, Cancel and the dev login page: apps/dev-idp/test/login-browser.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { throwsWithCode, useTempDir } from '@waxseal/testkit';
import { loginIdentity } from '../../src/commands/login.ts';
import { failedWithCode, runCli, type CliResult } from '../helpers/cli.ts';
import { clickThroughLogin } from '../helpers/browser.ts';

const tmp = useTempDir('wx-login-');

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const stop = (server: Server) =>
  new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });

const login = (issuer: string, configDir: string) =>
  runCli(['login', '--issuer', issuer, '--no-browser', '--timeout', '30'], { env: { WAXSEAL_CONFIG_DIR: configDir }, timeoutMs: 60_000 });

describe('waxseal login: the identity provider down or broken', () => {
  test('nothing listening: ERR_UNAVAILABLE, exit 5', async () => {
    const { server, url } = await serve(() => {});
    await stop(server); // the port is now closed
    const r = await login(`${url}/oidc`, join(tmp.dir, 'down'));
    failedWithCode(r, 'ERR_UNAVAILABLE', /could not be reached/);
    assert.equal(r.code, 5);
  });

  test('the provider answers 503: ERR_UNAVAILABLE, exit 5', async () => {
    const { server, url } = await serve((_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('maintenance\n'));
    try {
      const r = await login(`${url}/oidc`, join(tmp.dir, 'busy'));
      failedWithCode(r, 'ERR_UNAVAILABLE');
    } finally {
      await stop(server);
    }
  });

  test('no OIDC provider at the URL (404): ERR_ISSUER_DISCOVERY, exit 4', async () => {
    const { server, url } = await serve((_req, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}'),
    );
    try {
      const r = await login(`${url}/not-oidc`, join(tmp.dir, 'wrong'));
      failedWithCode(r, 'ERR_ISSUER_DISCOVERY');
      assert.equal(r.code, 4);
    } finally {
      await stop(server);
    }
  });

  test('an issuer that is not a URL is a usage error', async () => {
    const r = await login('not a url', join(tmp.dir, 'usage'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is not a URL/);
  });
});

describe('waxseal login: tokens without a usable e-mail identity are refused at login', () => {
  let server: Server;
  let issuer: string;

  before(async () => {
    // Accounts by login name: "nomail" has only a subject; "*@unverified.test" an unverified address.
    let provider!: Provider;
    const s = await serve((req, res) => provider.callback()(req, res));
    server = s.server;
    issuer = s.url;
    provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'sigstore',
          token_endpoint_auth_method: 'none',
          application_type: 'native',
          redirect_uris: ['http://127.0.0.1/callback'],
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
      ],
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      // The e-mail claims in the ID token itself, as Sigstore's CAs read them.
      conformIdTokenClaims: false,
      scopes: ['openid', 'email'],
      pkce: { required: () => true },
      findAccount: async (_ctx: unknown, id: string) => ({
        accountId: id,
        async claims() {
          if (id === 'nomail') return { sub: id };
          return { sub: id, email: id, email_verified: !id.endsWith('@unverified.test') };
        },
      }),
    } as never);
  });

  after(() => stop(server));

  /** Logs in through the provider's own pages as `name`; returns the CLI's result. */
  async function loginAs(name: string, configDir: string): Promise<CliResult> {
    let printed!: (url: string) => void;
    const urlPrinted = new Promise<string>((r) => (printed = r));
    let stderr = '';
    const done = runCli(['login', '--issuer', issuer, '--no-browser', '--timeout', '30'], {
      env: { WAXSEAL_CONFIG_DIR: configDir },
      timeoutMs: 60_000,
      onStderr: (chunk) => {
        stderr += chunk;
        const url = /(http:\/\/\S+\/auth\?\S+)/.exec(stderr)?.[1];
        if (url) printed(url);
      },
    });
    const authUrl = await Promise.race([urlPrinted, done.then((r) => assert.fail(`login exited early (${r.code}):\n${r.stderr}`))]);
    const redirect = new URL(authUrl).searchParams.get('redirect_uri')!;
    const callback = await clickThroughLogin(authUrl, name, (u) => u.href.startsWith(redirect));
    const page = await fetch(callback);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Login refused/, 'the browser is told the login was refused');
    return done;
  }

  test('a token with only a subject: ERR_IDENTITY_CLAIMS, exit 4, nothing cached', async () => {
    const configDir = join(tmp.dir, 'nomail');
    const r = await loginAs('nomail', configDir);
    failedWithCode(r, 'ERR_IDENTITY_CLAIMS', /subject "nomail" is not an e-mail address/);
    assert.equal(r.code, 4);
    assert.ok(!existsSync(join(configDir, 'token.json')));
  });

  test('an e-mail address the provider has not verified: ERR_IDENTITY_CLAIMS, exit 4', async () => {
    const configDir = join(tmp.dir, 'unverified');
    const r = await loginAs('carol@unverified.test', configDir);
    failedWithCode(r, 'ERR_IDENTITY_CLAIMS', /not verified the e-mail address carol@unverified\.test/);
    assert.ok(!existsSync(join(configDir, 'token.json')));
  });

  test('a verified address logs in (the same provider, so the refusals above are about the claims)', async () => {
    const configDir = join(tmp.dir, 'verified');
    let printed!: (url: string) => void;
    const urlPrinted = new Promise<string>((r) => (printed = r));
    let stderr = '';
    const done = runCli(['login', '--issuer', issuer, '--no-browser', '--timeout', '30'], {
      env: { WAXSEAL_CONFIG_DIR: configDir },
      onStderr: (chunk) => {
        stderr += chunk;
        const url = /(http:\/\/\S+\/auth\?\S+)/.exec(stderr)?.[1];
        if (url) printed(url);
      },
    });
    const authUrl = await urlPrinted;
    const redirect = new URL(authUrl).searchParams.get('redirect_uri')!;
    const page = await fetch(await clickThroughLogin(authUrl, 'dave@example.com', (u) => u.href.startsWith(redirect)));
    assert.match(await page.text(), /logged in to Waxseal as <b>dave@example\.com<\/b>/);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Logged in as dave@example\.com; token cached until /);
    assert.ok(existsSync(join(configDir, 'token.json')));
  });
});

test('loginIdentity: an e-mail address the provider verified, or ERR_IDENTITY_CLAIMS', () => {
  assert.equal(loginIdentity({ sub: 'x', email: 'a@example.com', email_verified: true }), 'a@example.com');
  assert.equal(loginIdentity({ email: 'a@example.com', email_verified: 'true' }), 'a@example.com');
  throwsWithCode(() => loginIdentity({ sub: 'bob', email: 'bob', email_verified: true }), 'ERR_IDENTITY_CLAIMS', /"bob" is not an e-mail/);
  throwsWithCode(() => loginIdentity({ sub: 'repo:acme/app' }), 'ERR_IDENTITY_CLAIMS', /subject "repo:acme\/app"/);
  throwsWithCode(() => loginIdentity({ email: 'a@example.com' }), 'ERR_IDENTITY_CLAIMS', /not verified/);
  throwsWithCode(() => loginIdentity({ email: 'a@example.com', email_verified: false }), 'ERR_IDENTITY_CLAIMS', /not verified/);
  throwsWithCode(() => loginIdentity({ email: ['a@example.com'], email_verified: true }), 'ERR_IDENTITY_CLAIMS');
});
