// Where the identity token comes from, as cosign and gitsign find it: each source on its own, the
// order between them, and a clear identity error when none has one. CI services are stood in for
// by a local HTTP server (GitHub Actions) and an executable on PATH (the Buildkite agent).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsWithCode } from '@waxseal/testkit';
import { resolveIdentityToken } from './identity-token.ts';
import { writeCachedToken } from './token-cache.ts';

const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** An unsigned JWT-shaped token (the client never verifies; the CA does). */
const jwt = (sub: string, exp = Math.floor(Date.now() / 1000) + 600) => `${b64url({ alg: 'ES256' })}.${b64url({ sub, exp })}.c2ln`;

let dir: string;
let gha: Server;
let ghaUrl: string;
const ghaAudiences: string[] = [];
const none = () => join(dir, 'no-such-token-file');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wx-idtoken-'));
  gha = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.headers.authorization !== 'bearer gha-request-token') return void res.writeHead(401).end();
    ghaAudiences.push(u.searchParams.get('audience') ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: jwt('repo:acme/app') }));
  });
  await new Promise<void>((r) => gha.listen(0, '127.0.0.1', r));
  ghaUrl = `http://127.0.0.1:${(gha.address() as { port: number }).port}/token`;
});
after(() => {
  gha.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An environment with nothing in it but what the test adds (no login cache either). */
const envWith = (vars: Record<string, string> = {}) => ({
  WAXSEAL_CONFIG_DIR: join(dir, 'empty-config'),
  PATH: process.env.PATH ?? '',
  ...vars,
});

test('--identity-token takes the token itself or a file holding it', async () => {
  const t = jwt('flag');
  assert.deepEqual(await resolveIdentityToken({ explicit: t, env: envWith() }), { token: t, source: 'flag' });
  const file = join(dir, 'token-file');
  writeFileSync(file, `${t}\n`);
  assert.deepEqual(await resolveIdentityToken({ explicit: file, env: envWith() }), { token: t, source: `file ${file}` });
  writeFileSync(file, 'not a token');
  await rejectsWithCode(resolveIdentityToken({ explicit: file, env: envWith() }), 'ERR_TOKEN_INVALID');
});

test('SIGSTORE_ID_TOKEN (GitLab CI) comes before ambient CI tokens', async () => {
  const t = jwt('project_path:acme/app');
  const r = await resolveIdentityToken({
    env: envWith({ SIGSTORE_ID_TOKEN: t, ACTIONS_ID_TOKEN_REQUEST_URL: ghaUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'gha-request-token' }),
    tokenFilePath: none(),
  });
  assert.deepEqual(r, { token: t, source: 'SIGSTORE_ID_TOKEN' });
});

test('GitHub Actions: the token service is asked with the sigstore audience', async () => {
  const r = await resolveIdentityToken({
    env: envWith({ ACTIONS_ID_TOKEN_REQUEST_URL: ghaUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'gha-request-token' }),
    tokenFilePath: none(),
  });
  assert.equal(r.source, 'GitHub Actions');
  assert.equal(ghaAudiences.at(-1), 'sigstore');
});

test('Buildkite: `buildkite-agent oidc request-token --audience sigstore` when the agent token is set', async () => {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const t = jwt('organization:acme:pipeline:app');
  const argsFile = join(dir, 'buildkite-args');
  writeFileSync(join(bin, 'buildkite-agent'), `#!/bin/sh\necho "$@" > '${argsFile}'\necho '${t}'\n`);
  chmodSync(join(bin, 'buildkite-agent'), 0o755);
  const env = envWith({ BUILDKITE_AGENT_ACCESS_TOKEN: 'agent-secret', PATH: `${bin}:${process.env.PATH}` });
  const r = await resolveIdentityToken({ env, tokenFilePath: none() });
  assert.deepEqual(r, { token: t, source: 'Buildkite' });
  assert.equal(readFileSync(argsFile, 'utf8').trim(), 'oidc request-token --audience sigstore');
  // A failing agent is a service problem, reported with what the agent said.
  writeFileSync(join(bin, 'buildkite-agent'), '#!/bin/sh\necho "no job" >&2\nexit 1\n');
  await rejectsWithCode(resolveIdentityToken({ env, tokenFilePath: none() }), 'ERR_UNAVAILABLE', /no job/);
});

test('a projected service-account token file (Kubernetes) at the token file path', async () => {
  const file = join(dir, 'oidc-token');
  const t = jwt('system:serviceaccount:ci:builder');
  writeFileSync(file, t);
  assert.deepEqual(await resolveIdentityToken({ env: envWith(), tokenFilePath: file }), { token: t, source: `file ${file}` });
  // noAmbient leaves CI and file sources out, as cosign's --oidc-disable-ambient-providers.
  await rejectsWithCode(
    resolveIdentityToken({ env: envWith(), tokenFilePath: file, noAmbient: true }),
    'ERR_TOKEN_INVALID',
    /no identity token/,
  );
});

test('then the login cache, then the interactive login; with none, a clear identity error', async () => {
  const configDir = join(dir, 'config');
  const cached = jwt('cached@example.com');
  writeCachedToken(cached, { WAXSEAL_CONFIG_DIR: configDir });
  let asked = 0;
  const interactive = async () => (asked++, jwt('typed@example.com'));
  const r = await resolveIdentityToken({ env: envWith({ WAXSEAL_CONFIG_DIR: configDir }), tokenFilePath: none(), interactive });
  assert.deepEqual(r, { token: cached, source: 'login cache' });
  assert.equal(asked, 0);
  const i = await resolveIdentityToken({ env: envWith(), tokenFilePath: none(), interactive });
  assert.equal(i.source, 'interactive login');
  assert.equal(asked, 1);
  await rejectsWithCode(resolveIdentityToken({ env: envWith(), tokenFilePath: none() }), 'ERR_TOKEN_INVALID', /waxseal login/);
});
