import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHmac, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, type JWK } from 'jose';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { parseIssuerConfig } from './issuers.ts';
import { OidcVerifier, MAX_TOKEN_BYTES, decodeUnverified, type FetchLike, type FetchResponseLike } from './oidc.ts';

const ISS = 'https://idp.example.com';
const T0 = 1_800_000_000_000;

interface FakeIdp {
  fetch: FetchLike;
  counts: Record<string, number>;
  routes: Map<string, () => { status: number; body?: unknown; location?: string } | Promise<never>>;
  keys: { kid: string; privateKey: KeyObject; jwk: JWK }[];
  published: JWK[];
  newKey(publish: boolean): Promise<string>;
}

async function fakeIdp(iss = ISS, algs: string[] = ['ES256']): Promise<FakeIdp> {
  const idp: FakeIdp = {
    counts: {},
    routes: new Map(),
    keys: [],
    published: [],
    async newKey(publish) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const kid = `k${idp.keys.length + 1}`;
      const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
      idp.keys.push({ kid, privateKey, jwk });
      if (publish) idp.published.push(jwk);
      return kid;
    },
    fetch: async (url, init) => {
      idp.counts[url] = (idp.counts[url] ?? 0) + 1;
      const route = idp.routes.get(url);
      if (!route) return response(404, {});
      const r = await route();
      if (init.signal.aborted) throw new Error('aborted');
      return response(r.status, r.body, r.location);
    },
  };
  idp.routes.set(`${iss}/.well-known/openid-configuration`, () => ({
    status: 200,
    body: { issuer: iss, jwks_uri: `${iss}/keys`, id_token_signing_alg_values_supported: algs },
  }));
  idp.routes.set(`${iss}/keys`, () => ({ status: 200, body: { keys: idp.published } }));
  await idp.newKey(true);
  return idp;
}

function response(status: number, body: unknown, location?: string): FetchResponseLike {
  return { status, headers: { get: (n) => (n === 'location' ? (location ?? null) : null) }, text: async () => JSON.stringify(body) };
}

const config = (extra: Record<string, unknown> = {}) =>
  parseIssuerConfig(JSON.stringify({ OIDCIssuers: { [ISS]: { Type: 'email' } }, ...extra }));

function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

async function mint(
  idp: FakeIdp,
  claims: Record<string, unknown> = {},
  o: { kid?: string; at?: number; ttl?: number } = {},
): Promise<string> {
  const kid = o.kid ?? idp.keys[0]!.kid;
  const key = idp.keys.find((k) => k.kid === kid)!.privateKey;
  const now = Math.floor((o.at ?? T0) / 1000);
  return new SignJWT({
    iss: ISS,
    aud: 'sigstore',
    sub: 'u1',
    email: 'a@example.com',
    email_verified: true,
    iat: now,
    exp: now + (o.ttl ?? 600),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(key);
}

test('a valid token verifies; the verified result is cached by token bytes', async () => {
  const idp = await fakeIdp();
  const c = clock();
  const v = new OidcVerifier({ issuers: config(), fetch: idp.fetch, now: c.now });
  const token = await mint(idp);
  const r = await v.verify(token);
  assert.equal(r.issuer.issuerUrl, ISS);
  assert.equal(r.claims.email, 'a@example.com');
  assert.equal(r.algorithm, 'ES256');
  assert.equal(r.keyId, 'k1');
  assert.equal(await v.verify(token), r, 'cache hit returns the same verified object');
  assert.equal(idp.counts[`${ISS}/keys`], 1);
  assert.equal(idp.counts[`${ISS}/.well-known/openid-configuration`], 1);
  // After expiry (plus skew) the cached token is refused.
  c.t += 661_000;
  await rejectsWithCode(v.verify(token), 'ERR_TOKEN_EXPIRED');
});

test('expiry, not-before and audience with bounded clock skew', async () => {
  const idp = await fakeIdp();
  const c = clock();
  const v = new OidcVerifier({ issuers: config(), fetch: idp.fetch, now: c.now });
  await rejectsWithCode(v.verify(await mint(idp, {}, { at: T0 - 700_000 })), 'ERR_TOKEN_EXPIRED', /expired/);
  await v.verify(await mint(idp, {}, { at: T0 - 630_000 })); // expired 30 s ago: within the 60 s skew
  await rejectsWithCode(v.verify(await mint(idp, { nbf: T0 / 1000 + 120 })), 'ERR_TOKEN_EXPIRED', /not valid yet/);
  await v.verify(await mint(idp, { nbf: T0 / 1000 + 30 }));
  await rejectsWithCode(v.verify(await mint(idp, { aud: 'other' })), 'ERR_TOKEN_AUDIENCE', /"other".*"sigstore"/);
  await v.verify(await mint(idp, { aud: ['other', 'sigstore'] }));
  await rejectsWithCode(v.verify(await mint(idp, { exp: undefined })), 'ERR_TOKEN_INVALID', /exp/);
});

test('algorithms: none, HS256 (with the public key as secret) and unadvertised ones are refused', async () => {
  const idp = await fakeIdp();
  const v = new OidcVerifier({ issuers: config(), fetch: idp.fetch, now: clock().now });
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { iss: ISS, aud: 'sigstore', sub: 'u1', exp: T0 / 1000 + 600 };
  await rejectsWithCode(v.verify(`${b64({ alg: 'none' })}.${b64(claims)}.`), 'ERR_TOKEN_ALGORITHM', /"none"/);
  const input = `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims)}`;
  const secret = JSON.stringify(idp.published[0]);
  await rejectsWithCode(
    v.verify(`${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`),
    'ERR_TOKEN_ALGORITHM',
    /HS256/,
  );
  // RS256 is in our allow-list but this issuer only advertises ES256.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rs = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
  await rejectsWithCode(v.verify(rs), 'ERR_TOKEN_ALGORITHM', /advertises/);
  assert.equal(idp.counts[`${ISS}/keys`], 1, 'algorithm checks need no extra fetches');
});

test('malformed tokens: size, shape, base64 and JSON are ERR_TOKEN_INVALID; unknown issuers ERR_ISSUER_UNKNOWN', async () => {
  const idp = await fakeIdp();
  const v = new OidcVerifier({ issuers: config(), fetch: idp.fetch, now: clock().now });
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  for (const bad of [
    '',
    'a.b',
    'a.b.c.d.e',
    `${b64('{"alg":"ES256"}')}.!!!.sig`,
    `${b64('not json')}.${b64('{}')}.sig`,
    `${b64('[1]')}.${b64('{}')}.sig`,
    'x'.repeat(MAX_TOKEN_BYTES + 1),
  ]) {
    await rejectsWithCode(v.verify(bad), 'ERR_TOKEN_INVALID', undefined, bad.slice(0, 40));
  }
  await rejectsWithCode(v.verify(await mint(idp, { iss: 'https://evil.example.com' })), 'ERR_ISSUER_UNKNOWN', /evil/);
  await rejectsWithCode(v.verify(`${b64('{"alg":"ES256"}')}.${b64('{"aud":"sigstore"}')}.c2ln`), 'ERR_TOKEN_INVALID', /iss/);
  const token = await mint(idp);
  const [h, p, s] = token.split('.');
  const flipped = Buffer.from(s!, 'base64url');
  flipped[5] ^= 1;
  await rejectsWithCode(v.verify(`${h}.${p}.${flipped.toString('base64url')}`), 'ERR_TOKEN_INVALID', /signature/);
});

test('an unknown key id triggers one JWKS refetch (rate limited) and then a clear error', async () => {
  const idp = await fakeIdp();
  const c = clock();
  const v = new OidcVerifier({ issuers: config(), fetch: idp.fetch, now: c.now });
  const jwksUrl = `${ISS}/keys`;
  await v.verify(await mint(idp));
  assert.equal(idp.counts[jwksUrl], 1);
  const k2 = await idp.newKey(false);
  // Within the cooldown after the last fetch: no refetch.
  await rejectsWithCode(v.verify(await mint(idp, {}, { kid: k2 })), 'ERR_TOKEN_INVALID', /unknown key id "k2"/);
  assert.equal(idp.counts[jwksUrl], 1);
  // After the cooldown: exactly one refetch, and the key is still unknown.
  c.t += 31_000;
  await rejectsWithCode(v.verify(await mint(idp, {}, { kid: k2, at: c.t })), 'ERR_TOKEN_INVALID', /unknown key id "k2"/);
  assert.equal(idp.counts[jwksUrl], 2);
  // The issuer publishes the rotated key: the next refetch finds it.
  idp.published.push(idp.keys[1]!.jwk);
  c.t += 31_000;
  const r = await v.verify(await mint(idp, {}, { kid: k2, at: c.t }));
  assert.equal(r.keyId, 'k2');
  assert.equal(idp.counts[jwksUrl], 3);
});

test('discovery: issuer mismatch, HTTP errors, redirects and timeouts; failures are retried later', async () => {
  const c = clock();
  const mismatch = await fakeIdp();
  mismatch.routes.set(`${ISS}/.well-known/openid-configuration`, () => ({
    status: 200,
    body: { issuer: 'https://other.example.com', jwks_uri: `${ISS}/keys` },
  }));
  const v1 = new OidcVerifier({ issuers: config(), fetch: mismatch.fetch, now: c.now });
  await rejectsWithCode(v1.verify(await mint(mismatch)), 'ERR_ISSUER_DISCOVERY', /did not match/);

  const down = await fakeIdp();
  const discovery = `${ISS}/.well-known/openid-configuration`;
  const good = down.routes.get(discovery)!;
  down.routes.set(discovery, () => ({ status: 503 }));
  const v2 = new OidcVerifier({ issuers: config(), fetch: down.fetch, now: c.now });
  await rejectsWithCode(v2.verify(await mint(down)), 'ERR_ISSUER_DISCOVERY', /HTTP 503/);
  down.routes.set(discovery, good);
  await v2.verify(await mint(down));

  const redirecting = await fakeIdp();
  redirecting.routes.set(discovery, () => ({ status: 302, location: 'https://attacker.example.net/.well-known/openid-configuration' }));
  const v3 = new OidcVerifier({ issuers: config(), fetch: redirecting.fetch, now: c.now });
  await rejectsWithCode(v3.verify(await mint(redirecting)), 'ERR_ISSUER_DISCOVERY', /different host/);
  redirecting.routes.set(discovery, () => ({ status: 301, location: '/moved/openid-configuration' }));
  redirecting.routes.set(`${ISS}/moved/openid-configuration`, good);
  await v3.verify(await mint(redirecting));

  const slow = await fakeIdp();
  slow.routes.set(discovery, () => new Promise<never>(() => {}));
  const hanging: FetchLike = (url, init) =>
    Promise.race([
      slow.fetch(url, init),
      new Promise<never>((_, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted')))),
    ]);
  const v4 = new OidcVerifier({ issuers: config(), fetch: hanging, now: c.now, httpTimeoutMs: 50 });
  await rejectsWithCode(v4.verify(await mint(slow)), 'ERR_ISSUER_DISCOVERY', /timed out/);

  const badJwks = await fakeIdp();
  badJwks.routes.set(`${ISS}/keys`, () => ({ status: 200, body: { keys: 'nope' } }));
  const v5 = new OidcVerifier({ issuers: config(), fetch: badJwks.fetch, now: c.now });
  await rejectsWithCode(v5.verify(await mint(badJwks)), 'ERR_ISSUER_DISCOVERY', /JWKS/);
});

test('meta-issuers run discovery against the concrete iss', async () => {
  const concrete = 'https://tenant-7.example.com';
  const idp = await fakeIdp(concrete);
  const issuers = parseIssuerConfig(JSON.stringify({ MetaIssuers: { 'https://*.example.com': { Type: 'email' } } }));
  const v = new OidcVerifier({ issuers, fetch: idp.fetch, now: clock().now });
  const r = await v.verify(await mint(idp, { iss: concrete }));
  assert.equal(r.issuer.issuerUrl, concrete);
  assert.equal(idp.counts[`${concrete}/.well-known/openid-configuration`], 1);
  await rejectsWithCode(v.verify(await mint(idp, { iss: 'https://a.b.example.com' })), 'ERR_ISSUER_UNKNOWN');
});

test('a token has one byte form: padding, whitespace or other unused bits in any part are refused', () => {
  // A syntactically valid compact JWS (the signature is not checked at this step).
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const sig = Buffer.from(new Uint8Array(64).fill(7)).toString('base64url'); // 86 chars: 4 unused bits in the last one
  const token = `${enc({ alg: 'ES256', kid: 'k' })}.${enc({ iss: 'https://issuer.example', sub: 'x' })}.${sig}`;
  assert.doesNotThrow(() => decodeUnverified(token));
  const flipLowBits = (s: string) => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s.at(-1)!);
    return s.slice(0, -1) + alphabet[last ^ 1]!;
  };
  const [h, p, s] = token.split('.') as [string, string, string];
  for (const [what, variant] of [
    ['padding on the signature', `${token}==`],
    ['a space in the signature', `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`],
    ['other unused bits in the signature', `${h}.${p}.${flipLowBits(s)}`],
    ['padding on the payload', `${h}.${p}=.${s}`],
  ] as const) {
    throwsWithCode(() => decodeUnverified(variant), 'ERR_TOKEN_INVALID', undefined, what);
  }
});
