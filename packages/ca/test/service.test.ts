// The CA over HTTP, end to end: OIDC discovery and JWKS from in-test issuers on 127.0.0.1, tokens
// minted with jose, certificates checked with openssl and read back through src/core/x509.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { FulcioSigner } from '@sigstore/sign';
import { OID, FULCIO_OID } from '../../core/src/oids.ts';
import { parseCertificatesPem, fulcioExtensions, subjectAltNames } from '../../core/src/x509.ts';
import { ephemeralCa, type EphemeralCa } from '../src/chain.ts';
import { githubActionsIssuerConfig, parseIssuerConfig } from '../src/issuers.ts';
import { startCaServer, CaService, type CaAuditEvent, type SigningRequestContext } from '../src/service.ts';
import { ERROR_CODES, WaxsealError, type ErrorCode } from '../../core/src/errors.ts';
import { postJson, rejectsWithCode, respondsWithStatus } from '@waxseal/testkit';
import type { RunningServer } from '../../server/src/http.ts';
import {
  startTestIssuer,
  clientKey,
  publicKeyRequest,
  opensslVerify,
  opensslText,
  opensslCsr,
  unsignedToken,
  hmacToken,
  type TestIssuer,
} from './helpers.ts';
import { GITHUB_TOKEN_CLAIMS, EXPECTED_GITHUB_EXTENSIONS, configurationEntry } from './fixtures.ts';

let emailIdp: TestIssuer;
let uriIdp: TestIssuer;
let userIdp: TestIssuer;
let ghIdp: TestIssuer;
let k8sIdp: TestIssuer;
let ca: EphemeralCa;
let server: RunningServer & { service: CaService };
let url: string;
const audit: CaAuditEvent[] = [];
const policy: { deny?: (r: SigningRequestContext) => boolean; auditFails?: boolean } = {};

before(async () => {
  [emailIdp, uriIdp, userIdp, ghIdp, k8sIdp] = await Promise.all([
    startTestIssuer({ path: '/email' }),
    startTestIssuer({ path: '/uri' }),
    startTestIssuer({ path: '/users' }),
    startTestIssuer({ path: '/gha' }),
    startTestIssuer({ path: '/k8s/tenant-a' }),
  ]);
  const k8sBase = k8sIdp.url.replace(/tenant-a$/, '');
  const issuers = parseIssuerConfig(
    JSON.stringify({
      OIDCIssuers: {
        [emailIdp.url]: { IssuerURL: emailIdp.url, ClientID: 'sigstore', Type: 'email' },
        [uriIdp.url]: { IssuerURL: uriIdp.url, Type: 'uri', SubjectDomain: 'http://127.0.0.1' },
        [userIdp.url]: { IssuerURL: userIdp.url, Type: 'username', SubjectDomain: '127.0.0.1' },
        [ghIdp.url]: { IssuerURL: ghIdp.url, Type: 'ci-provider', CIProvider: 'github-workflow' },
      },
      MetaIssuers: { [`${k8sBase}tenant-*`]: { Type: 'kubernetes' } },
    }),
    { include: [githubActionsIssuerConfig()] },
  );
  ca = await ephemeralCa();
  server = await startCaServer({
    signer: ca.signer,
    chain: ca.chain,
    issuers,
    authorize: async (r) => {
      if (policy.deny?.(r)) throw new WaxsealError('ERR_POLICY_DENIED', `${r.principal.san.value} may not sign here`);
    },
    audit: async (e) => {
      if (policy.auditFails && e.result === 'issued') throw new Error('audit store down');
      audit.push(e);
    },
    onInternalError: () => {},
  });
  url = server.url;
});

after(async () => {
  await server.close();
  await Promise.all([emailIdp, uriIdp, userIdp, ghIdp, k8sIdp].map((i) => i.close()));
});

const signingCert = (body: unknown, headers?: Record<string, string>) => postJson(`${url}/api/v2/signingCert`, body, headers);

function chainOf(r: { status: number; json: any; text: string }): string[] {
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['signedCertificateDetachedSct']);
  assert.deepEqual(Object.keys(r.json.signedCertificateDetachedSct), ['chain'], 'no SCT without a CT log');
  const certs: string[] = r.json.signedCertificateDetachedSct.chain.certificates;
  assert.equal(certs.length, 3);
  assert.equal(certs[1], ca.chain.length === 2 ? server.service.chain.pems[0] : undefined);
  assert.equal(certs[2], ca.rootPem);
  return certs;
}

const leafOf = (certs: string[]) => parseCertificatesPem(certs[0]!)[0]!;

test('public key + proof of possession, token in the body: openssl verifies the chain and shows the extensions', async () => {
  const key = clientKey('p256');
  const token = await emailIdp.mint({ sub: 'user-123', email: 'dev@example.com', email_verified: true });
  const certs = chainOf(await signingCert(publicKeyRequest(token, key, 'dev@example.com')));
  assert.match(opensslVerify(certs), /leaf\.pem: OK/);
  const text = opensslText(certs[0]!);
  assert.match(text, /X509v3 Subject Alternative Name: critical\s+email:dev@example\.com/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage: \s*\n\s+Code Signing/);
  assert.doesNotMatch(text, /Basic Constraints/);
  assert.match(text, /1\.3\.6\.1\.4\.1\.57264\.1\.1: \s*\n\s+http:\/\/127\.0\.0\.1/);
  assert.match(text, /1\.3\.6\.1\.4\.1\.57264\.1\.8:/);
  assert.match(text, /1\.3\.6\.1\.4\.1\.57264\.1\.24:/);
  const leaf = leafOf(certs);
  assert.deepEqual(subjectAltNames(leaf), [{ type: 'email', value: 'dev@example.com' }]);
  assert.deepEqual(fulcioExtensions(leaf), { issuerV1: emailIdp.url, issuer: emailIdp.url, tokenSubject: 'user-123' });
  assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 600_000);
  const issued = audit.find((e) => e.serial === Buffer.from(leaf.serial).toString('hex'))!;
  assert.equal(issued.result, 'issued');
  assert.equal(issued.tokenIssuer, emailIdp.url);
  assert.equal(issued.subject, 'user-123');
  assert.deepEqual(issued.san, { type: 'email', value: 'dev@example.com' });
  assert.equal(issued.keyAlgorithm, 'PKIX_ECDSA_P256_SHA_256');
  assert.match(issued.keyFingerprint!, /^[0-9a-f]{64}$/);
  assert.equal(issued.caKeyRef, ca.signer.keyRef);
});

test('token in the Authorization header, and the CSR form, both issue', async () => {
  const key = clientKey('ed25519');
  const token = await emailIdp.mint({ sub: 'u2', email: 'ops@example.com', email_verified: true });
  const body = publicKeyRequest(undefined, key, 'ops@example.com');
  const viaHeader = chainOf(await signingCert(body, { authorization: `Bearer ${token}` }));
  assert.match(opensslVerify(viaHeader), /OK/);

  const csrKey = clientKey('p384');
  const viaCsr = chainOf(
    await signingCert({
      credentials: { oidcIdentityToken: token },
      certificateSigningRequest: opensslCsr(csrKey, '/CN=ignored/O=ignored', 'sha384'),
    }),
  );
  assert.match(opensslVerify(viaCsr), /OK/);
  const leaf = leafOf(viaCsr);
  assert.deepEqual([...leaf.subjectRaw], [0x30, 0x00], 'the CSR subject is ignored');
  assert.deepEqual(Buffer.from(leaf.spki), csrKey.publicKey.export({ format: 'der', type: 'spki' }));

  // The body's token wins over the header.
  const bad = await signingCert(publicKeyRequest(token, clientKey('p256'), 'ops@example.com'), { authorization: 'Bearer garbage' });
  assert.equal(bad.status, 200);
  const worse = await signingCert(publicKeyRequest('garbage', clientKey('p256'), 'ops@example.com'), { authorization: `Bearer ${token}` });
  await respondsWithStatus(worse, 401, 16); // Unauthenticated
});

test('uri, username (OtherName) and kubernetes (meta-issuer) identities', async () => {
  const uriTok = await uriIdp.mint({ sub: 'http://127.0.0.1/users/alice' });
  const k1 = clientKey('p256');
  const uriCerts = chainOf(await signingCert(publicKeyRequest(uriTok, k1, 'http://127.0.0.1/users/alice')));
  assert.deepEqual(subjectAltNames(leafOf(uriCerts)), [{ type: 'uri', value: 'http://127.0.0.1/users/alice' }]);

  const userTok = await userIdp.mint({ sub: 'alice' });
  const userCerts = chainOf(await signingCert(publicKeyRequest(userTok, k1, 'alice')));
  assert.match(opensslVerify(userCerts), /OK/);
  assert.match(
    opensslText(userCerts[0]!),
    /X509v3 Subject Alternative Name: critical\s+othername: 1\.3\.6\.1\.4\.1\.57264\.1\.7::alice!127\.0\.0\.1/,
  );
  assert.deepEqual(subjectAltNames(leafOf(userCerts)), [{ type: 'otherName', typeId: FULCIO_OID.otherName, value: 'alice!127.0.0.1' }]);
  assert.equal(fulcioExtensions(leafOf(userCerts)).tokenSubject, 'alice');

  const k8sTok = await k8sIdp.mint({
    sub: 'system:serviceaccount:ci:signer',
    'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'signer', uid: 'x' } },
  });
  const k8sCerts = chainOf(await signingCert(publicKeyRequest(k8sTok, k1, 'system:serviceaccount:ci:signer')));
  assert.deepEqual(subjectAltNames(leafOf(k8sCerts)), [
    { type: 'uri', value: 'https://kubernetes.io/namespaces/ci/serviceaccounts/signer' },
  ]);
  assert.equal(fulcioExtensions(leafOf(k8sCerts)).issuer, k8sIdp.url);
});

test('GitHub Actions workflow identity: 1.2-1.6, 1.9-1.23 and 1.24 from the ci-provider templates', async () => {
  const { iss: _iss, exp: _exp, nbf: _nbf, iat: _iat, ...claims } = GITHUB_TOKEN_CLAIMS;
  const token = await ghIdp.mint(claims);
  const certs = chainOf(await signingCert(publicKeyRequest(token, clientKey('p256'), claims.sub)));
  assert.match(opensslVerify(certs), /OK/);
  const leaf = leafOf(certs);
  assert.deepEqual(subjectAltNames(leaf), [{ type: 'uri', value: EXPECTED_GITHUB_EXTENSIONS.buildSignerURI }]);
  assert.deepEqual(fulcioExtensions(leaf), {
    issuerV1: ghIdp.url,
    issuer: ghIdp.url,
    ...EXPECTED_GITHUB_EXTENSIONS,
    deploymentEnvironment: 'prod',
    tokenSubject: claims.sub,
  });
  const text = opensslText(certs[0]!);
  for (let arc = 1; arc <= 24; arc++) {
    if (arc === 7) continue; // 1.7 is the OtherName type-id, not an extension
    assert.match(text, new RegExp(`1\\.3\\.6\\.1\\.4\\.1\\.57264\\.1\\.${arc}:`), `extension 1.${arc}`);
  }
  assert.ok(leaf.extensions.some((e) => e.oid === OID.authorityKeyIdentifier));
});

test('sigstore-js (@sigstore/sign FulcioSigner) obtains a certificate from the CA', async () => {
  const token = await emailIdp.mint({ sub: 'u9', email: 'js@example.com', email_verified: true });
  const signer = new FulcioSigner({ fulcioBaseURL: url, identityProvider: { getToken: async () => token } });
  const sig = await signer.sign(Buffer.from('hello'));
  assert.equal(sig.key.$case, 'x509Certificate');
  const cert = parseCertificatesPem((sig.key as { certificate: string }).certificate)[0]!;
  assert.deepEqual(subjectAltNames(cert), [{ type: 'email', value: 'js@example.com' }]);
});

interface BadCase {
  name: string;
  /** The WaxsealError behind the answer, as the audit record names it. */
  code: ErrorCode;
  body: () => Promise<unknown> | unknown;
  headers?: Record<string, string>;
  status: number;
  grpc: number;
  message: RegExp;
}

test('bad requests get the right 4xx, grpc code and a clear message, and are audited', async () => {
  const key = clientKey('p256');
  const email = 'dev@example.com';
  const good = (claims: Record<string, unknown> = {}, opts?: Parameters<TestIssuer['mint']>[1]) =>
    emailIdp.mint({ sub: 's', email, email_verified: true, ...claims }, opts);
  const base = Math.floor(Date.now() / 1000);
  const cases: BadCase[] = [
    {
      name: 'expired token',
      code: 'ERR_TOKEN_EXPIRED',
      body: async () => publicKeyRequest(await good({ iat: base - 7200, exp: base - 3600 }), key, email),
      status: 401,
      grpc: 16,
      message: /expired/,
    },
    {
      name: 'wrong audience',
      code: 'ERR_TOKEN_AUDIENCE',
      body: async () => publicKeyRequest(await good({ aud: 'not-sigstore' }), key, email),
      status: 401,
      grpc: 16,
      message: /audience.*sigstore/,
    },
    {
      name: 'unknown issuer',
      code: 'ERR_ISSUER_UNKNOWN',
      body: async () => publicKeyRequest(await good({}, { iss: 'https://unknown.example.com' }), key, email),
      status: 401,
      grpc: 16,
      message: /not configured/,
    },
    {
      name: 'meta-issuer pattern must not match',
      code: 'ERR_ISSUER_UNKNOWN',
      body: async () => publicKeyRequest(await k8sIdp.mint({ sub: 's' }, { iss: `${k8sIdp.url}.evil.example` }), key, 's'),
      status: 401,
      grpc: 16,
      message: /not configured/,
    },
    {
      name: 'meta-issuer path injection',
      code: 'ERR_ISSUER_UNKNOWN',
      body: async () => publicKeyRequest(await k8sIdp.mint({ sub: 's' }, { iss: `${k8sIdp.url}/../../email` }), key, 's'),
      status: 401,
      grpc: 16,
      message: /not configured/,
    },
    {
      name: 'unknown kid',
      code: 'ERR_TOKEN_INVALID',
      body: async () => publicKeyRequest(await good({}, { kid: 'rotated-away' }), key, email),
      status: 401,
      grpc: 16,
      message: /unknown key id "rotated-away"/,
    },
    {
      name: 'alg none',
      code: 'ERR_TOKEN_ALGORITHM',
      body: () =>
        publicKeyRequest(
          unsignedToken({ iss: emailIdp.url, aud: 'sigstore', sub: 's', email, email_verified: true, exp: base + 600 }),
          key,
          email,
        ),
      status: 401,
      grpc: 16,
      message: /"none" is not allowed/,
    },
    {
      name: 'HS256 with the issuer public key as secret',
      code: 'ERR_TOKEN_ALGORITHM',
      body: () =>
        publicKeyRequest(
          hmacToken(
            { iss: emailIdp.url, aud: 'sigstore', sub: 's', email, email_verified: true, exp: base + 600 },
            emailIdp.publicKey.export({ format: 'pem', type: 'spki' }) as string,
            emailIdp.kid,
          ),
          key,
          email,
        ),
      status: 401,
      grpc: 16,
      message: /HS256/,
    },
    {
      name: 'signature by another key',
      code: 'ERR_TOKEN_INVALID',
      body: async () => publicKeyRequest(await good({}, { key: clientKey('p256').privateKey }), key, email),
      status: 401,
      grpc: 16,
      message: /signature/,
    },
    {
      name: 'PoP over the wrong subject',
      code: 'ERR_PROOF_OF_POSSESSION',
      body: async () => publicKeyRequest(await good(), key, 'someone-else@example.com'),
      status: 400,
      grpc: 3,
      message: /proof of possession/,
    },
    {
      name: 'weak RSA-1024 key',
      code: 'ERR_KEY_WEAK',
      body: async () => publicKeyRequest(await good(), clientKey('rsa1024'), email),
      status: 400,
      grpc: 3,
      message: /1024 bits/,
    },
    {
      name: 'unsupported curve secp256k1',
      code: 'ERR_KEY_UNSUPPORTED',
      body: async () => publicKeyRequest(await good(), clientKey('secp256k1'), email),
      status: 400,
      grpc: 3,
      message: /secp256k1/,
    },
    { name: 'malformed JSON', code: 'ERR_JSON_PARSE', body: () => '{"credentials": {', status: 400, grpc: 3, message: /not valid JSON/ },
    { name: 'JSON that is not an object', code: 'ERR_INVALID_INPUT', body: () => '[1,2]', status: 400, grpc: 3, message: /JSON object/ },
    {
      name: 'missing token',
      code: 'ERR_TOKEN_INVALID',
      body: () => publicKeyRequest(undefined, key, email),
      status: 401,
      grpc: 16,
      message: /no OIDC identity token/,
    },
    {
      name: 'email_verified false',
      code: 'ERR_IDENTITY_CLAIMS',
      body: async () => publicKeyRequest(await good({ email_verified: false }), key, email),
      status: 400,
      grpc: 3,
      message: /email_verified/,
    },
    {
      name: 'no key at all',
      code: 'ERR_INVALID_INPUT',
      body: async () => ({ credentials: { oidcIdentityToken: await good() } }),
      status: 400,
      grpc: 3,
      message: /neither publicKeyRequest nor certificateSigningRequest/,
    },
    {
      name: 'both key forms',
      code: 'ERR_INVALID_INPUT',
      body: async () => ({ ...publicKeyRequest(await good(), key, email), certificateSigningRequest: opensslCsr(key) }),
      status: 400,
      grpc: 3,
      message: /not both/,
    },
    {
      name: 'missing proof',
      code: 'ERR_PROOF_OF_POSSESSION',
      body: async () => ({ credentials: { oidcIdentityToken: await good() }, publicKeyRequest: { publicKey: { content: key.pem } } }),
      status: 400,
      grpc: 3,
      message: /proofOfPossession is missing/,
    },
    {
      name: 'bad CSR',
      code: 'ERR_CSR_INVALID',
      body: async () => ({
        credentials: { oidcIdentityToken: await good() },
        certificateSigningRequest: Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n').toString(
          'base64',
        ),
      }),
      status: 400,
      grpc: 3,
      message: /certificate signing request/,
    },
    {
      name: 'CSR with a key/hash pair outside the allowed list (P-384 with SHA-256)',
      code: 'ERR_KEY_UNSUPPORTED',
      body: async () => ({ credentials: { oidcIdentityToken: await good() }, certificateSigningRequest: opensslCsr(clientKey('p384')) }),
      status: 400,
      grpc: 3,
      message: /not permitted: PKIX_ECDSA_P384_SHA_256/,
    },
    {
      name: 'wrong content type',
      code: 'ERR_MEDIA_TYPE',
      body: async () => publicKeyRequest(await good(), key, email),
      headers: { 'content-type': 'text/plain' },
      status: 415,
      grpc: 3,
      message: /Content-Type/,
    },
  ];
  for (const c of cases) {
    const before = audit.length;
    const r = await signingCert(await c.body(), c.headers);
    await respondsWithStatus(r, c.status, c.grpc, c.message, c.name);
    assert.equal(c.status, ERROR_CODES[c.code].status, `${c.name}: the status is the one ${c.code} maps to`);
    assert.deepEqual(Object.keys(r.json).sort(), ['code', 'details', 'message'], c.name);
    assert.deepEqual(r.json.details, []);
    const event = audit[before];
    assert.equal(audit.length, before + 1, `${c.name} is audited once`);
    assert.equal(event!.result, 'refused');
    assert.equal(event!.errorCode, c.code, c.name);
  }
});

test('oversize bodies are refused with 413 before they are read', async () => {
  const size = 4 * 1024 * 1024 + 1;
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${url}/api/v2/signingCert`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': size } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end(Buffer.alloc(size, 0x20));
  });
  await respondsWithStatus({ status: r.status, json: JSON.parse(r.body) }, 413, 8, /exceeds/); // ResourceExhausted
});

test('the authorize hook refuses with 403; a failing audit store withholds the certificate', async () => {
  const key = clientKey('p256');
  const token = await emailIdp.mint({ sub: 'm', email: 'mallory@example.com', email_verified: true });
  policy.deny = (r) =>
    r.principal.san.value.startsWith('mallory') &&
    r.extensions.issuer === emailIdp.url &&
    r.publicKey.algorithm === 'PKIX_ECDSA_P256_SHA_256';
  try {
    const r = await signingCert(publicKeyRequest(token, key, 'mallory@example.com'));
    await respondsWithStatus(r, 403, 7, /may not sign/); // PermissionDenied
    assert.equal(audit[audit.length - 1]!.errorCode, 'ERR_POLICY_DENIED');
  } finally {
    delete policy.deny;
  }
  policy.auditFails = true;
  try {
    const r = await signingCert(publicKeyRequest(token, key, 'mallory@example.com'));
    await respondsWithStatus(r, 503, 14); // Unavailable
    assert.doesNotMatch(r.text, /BEGIN CERTIFICATE/);
  } finally {
    delete policy.auditFails;
  }
});

test('trustBundle, configuration, rootCert and healthz; errors elsewhere keep the Fulcio shape', async () => {
  const tb = (await (await fetch(`${url}/api/v2/trustBundle`)).json()) as { chains: { certificates: string[] }[] };
  assert.deepEqual(tb, { chains: [{ certificates: server.service.chain.pems }] });
  assert.equal(tb.chains[0].certificates[1], ca.rootPem);
  const conf = (await (await fetch(`${url}/api/v2/configuration`)).json()) as { issuers: any[] };
  const byUrl = Object.fromEntries(conf.issuers.map((i: any) => [i.issuerUrl ?? i.wildcardIssuerUrl, i]));
  assert.deepEqual(byUrl[emailIdp.url], configurationEntry({ issuerUrl: emailIdp.url, challengeClaim: 'email', issuerType: 'email' }));
  assert.equal(byUrl[userIdp.url].subjectDomain, '127.0.0.1');
  assert.ok(conf.issuers.some((i: any) => i.wildcardIssuerUrl && i.issuerType === 'kubernetes'));
  const root = await fetch(`${url}/api/v1/rootCert`);
  assert.equal(root.headers.get('content-type'), 'application/pem-certificate-chain');
  assert.equal(await root.text(), ca.chainPem);
  assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'SERVING' });
  const nf = await respondsWithStatus(fetch(`${url}/api/v2/nothing`), 404, 5); // NotFound
  assert.deepEqual(Object.keys(nf).sort(), ['code', 'details', 'message']);
  await respondsWithStatus(fetch(`${url}/api/v2/signingCert`), 405, 12); // Unimplemented
});

test('CaService.create refuses a chain that does not belong to the signer', async () => {
  const other = await ephemeralCa();
  await rejectsWithCode(CaService.create({ signer: other.signer, chain: ca.chain, issuers: parseIssuerConfig('{}') }), 'ERR_CHAIN_INVALID');
});
