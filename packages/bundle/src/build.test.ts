// The trust-document builders with real certificates and keys (minted by @waxseal/keys) and,
// for the Rekor views, against what our log service itself says about its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { sha256 } from '../../core/src/crypto.ts';
import { encodePem } from '../../core/src/pem.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import { selfSignedRoot, intermediateCa, tsaLeaf } from '../../keys/src/certify.ts';
import { startTestLog, HOST } from '../../rekor/test/helpers.ts';
import {
  buildCertificateAuthority,
  buildTransparencyLog,
  buildRekorLogs,
  buildTrustedRoot,
  buildSigningConfig,
  parseTrustedRoot,
  serializeTrustedRoot,
  parseSigningConfig,
  serializeSigningConfig,
  selectServices,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  TRUSTED_ROOT_MEDIA_TYPE_V02,
  SIGNING_CONFIG_MEDIA_TYPE_V02,
} from './index.ts';

const YEAR = 365 * 86_400_000;

async function chain(organization?: string) {
  const rootSigner = generateSigner('ecdsa-p384');
  const root = await selfSignedRoot(rootSigner, {
    ...(organization ? { organization } : {}),
    commonName: 'Root',
    notAfter: new Date(Date.now() + YEAR),
  });
  const signer = generateSigner();
  const issuing = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    ...(organization ? { organization } : {}),
    commonName: 'Issuing CA',
    notBefore: new Date('2024-03-01T00:00:00Z'),
    notAfter: new Date(Date.now() + YEAR),
  });
  return { root, issuing, rootSigner };
}

test('buildCertificateAuthority: subject and window from the leaf-most certificate, chain as DER', async () => {
  const { root, issuing, rootSigner } = await chain('Acme');
  const ca = buildCertificateAuthority({ uri: 'https://ca.acme.test', chain: [issuing, root], operator: 'acme' });
  assert.deepEqual(ca.subject, { organization: 'Acme', commonName: 'Issuing CA' });
  assert.deepEqual(ca.certChain, [issuing.der, root.der]);
  assert.deepEqual(ca.validFor, { start: new Date('2024-03-01T00:00:00Z') });
  assert.equal(ca.operator, 'acme');
  // PEM text gives the same entry; an explicit end (a retired chain) is kept.
  const end = new Date('2025-01-01T00:00:00Z');
  const fromPem = buildCertificateAuthority({
    uri: 'https://ca.acme.test',
    chain: encodePem('CERTIFICATE', issuing.der) + encodePem('CERTIFICATE', root.der),
    validFor: { end },
  });
  assert.deepEqual(fromPem, { subject: ca.subject, uri: ca.uri, certChain: ca.certChain, validFor: { start: ca.validFor.start, end } });

  const tsaSigner = generateSigner();
  const leaf = await tsaLeaf(tsaSigner.publicKeySpki, rootSigner, root, { commonName: 'TSA', notAfter: new Date(Date.now() + YEAR) });
  assert.deepEqual(buildCertificateAuthority({ uri: 'https://tsa', chain: [leaf, root] }).subject, { commonName: 'TSA' });
  throwsWithCode(() => buildCertificateAuthority({ uri: 'https://ca', chain: [] }), 'ERR_TRUSTED_ROOT_INVALID', /empty/);
  throwsWithCode(() => buildCertificateAuthority({ uri: 'https://ca', chain: 'no PEM here' }), 'ERR_TRUSTED_ROOT_INVALID', /empty/);
});

test('buildTransparencyLog: key details by key type, log ID = SHA-256(SPKI) unless given', () => {
  const start = new Date('2024-01-01T00:00:00Z');
  for (const [kind, details] of [
    ['ecdsa-p256', 'PKIX_ECDSA_P256_SHA_256'],
    ['ecdsa-p384', 'PKIX_ECDSA_P384_SHA_384'],
    ['ed25519', 'PKIX_ED25519'],
  ] as const) {
    const spki = generateSigner(kind).publicKeySpki;
    const log = buildTransparencyLog({ baseUrl: 'https://log', publicKey: spki, validFor: { start } });
    assert.equal(log.publicKey.keyDetails, details);
    assert.deepEqual(log.logId, sha256(spki));
    assert.deepEqual(log.publicKey.rawBytes, spki);
    assert.equal(log.hashAlgorithm, 'sha256');
    assert.deepEqual(buildTransparencyLog({ baseUrl: 'https://log', publicKey: encodePem('PUBLIC KEY', spki), validFor: { start } }), log);
  }
  const id = new Uint8Array(32).fill(1);
  const ct = buildTransparencyLog({ baseUrl: 'https://ct', publicKey: generateSigner().publicKeySpki, validFor: { start }, logId: id });
  assert.deepEqual(ct.logId, id);
  throwsWithCode(
    () => buildTransparencyLog({ baseUrl: 'https://log', publicKey: new Uint8Array(10), validFor: { start } }),
    'ERR_KEY_UNSUPPORTED',
  );
});

test('buildRekorLogs: the same v1 and v2 views our log service publishes for its key', async () => {
  const signer = generateSigner('ed25519');
  const log = await startTestLog({ signer });
  try {
    const validFrom = new Date('2024-05-01T00:00:00Z');
    const urls = { v1BaseUrl: `https://${HOST}`, v2BaseUrl: `https://${HOST}/v2` };
    const theirs = log.service.trustedRootTlogs(urls, validFrom);
    const ours = buildRekorLogs({ origin: HOST, publicKey: signer.publicKeySpki, validFor: { start: validFrom }, ...urls });
    const root = buildTrustedRoot({ certificateAuthorities: [], timestampAuthorities: [], tlogs: [ours.v1, ours.v2] });
    assert.deepEqual(serializeTrustedRoot(root).tlogs, [theirs.v1, theirs.v2]);
  } finally {
    await log.close();
  }
  throwsWithCode(
    () =>
      buildRekorLogs({
        origin: 'log.example',
        publicKey: signer.publicKeySpki,
        validFor: { start: new Date() },
        v1BaseUrl: 'https://other.example',
      }),
    'ERR_CONFIG',
    /must equal the log origin/,
  );
});

test('buildTrustedRoot: lists ordered oldest first, and the document reads back as built', async () => {
  const a = await chain('Acme');
  const b = await chain('Acme');
  const retired = buildCertificateAuthority({
    uri: 'https://ca',
    chain: [a.issuing, a.root],
    validFor: { start: new Date('2023-01-01T00:00:00Z'), end: new Date('2024-03-01T00:00:00Z') },
  });
  const current = buildCertificateAuthority({ uri: 'https://ca', chain: [b.issuing, b.root] });
  const key = generateSigner('ed25519').publicKeySpki;
  const newLog = buildRekorLogs({
    origin: 'log.acme.test',
    publicKey: key,
    validFor: { start: new Date('2024-06-01T00:00:00Z') },
    v1BaseUrl: 'https://log.acme.test',
  });
  const oldLog = buildTransparencyLog({
    baseUrl: 'https://log.acme.test',
    publicKey: generateSigner().publicKeySpki,
    validFor: { start: new Date('2023-01-01T00:00:00Z'), end: new Date('2024-06-01T00:00:00Z') },
  });
  const root = buildTrustedRoot({
    certificateAuthorities: [current, retired],
    timestampAuthorities: [current],
    tlogs: [newLog.v1, newLog.v2, oldLog],
  });
  assert.equal(root.mediaType, TRUSTED_ROOT_MEDIA_TYPE_V01);
  assert.deepEqual(root.certificateAuthorities, [retired, current]);
  assert.deepEqual(root.tlogs, [oldLog, newLog.v1, newLog.v2], 'oldest first; equal starts keep their order');
  assert.deepEqual(parseTrustedRoot(JSON.parse(JSON.stringify(serializeTrustedRoot(root)))), root);
  assert.equal(
    buildTrustedRoot({ certificateAuthorities: [], timestampAuthorities: [], mediaType: TRUSTED_ROOT_MEDIA_TYPE_V02 }).mediaType,
    TRUSTED_ROOT_MEDIA_TYPE_V02,
  );
});

test('buildSigningConfig: one operator, selector ANY, Rekor v2 preferred by selection', () => {
  const validFrom = new Date('2024-01-01T00:00:00Z');
  const c = buildSigningConfig({
    operator: 'acme',
    validFrom,
    caUrl: 'https://sign.acme.test',
    oidcUrl: 'https://sign.acme.test/oidc',
    tsaUrl: 'https://sign.acme.test/api/v1/timestamp',
    rekor: [
      { url: 'https://sign.acme.test', majorApiVersion: 2 },
      { url: 'https://sign.acme.test', majorApiVersion: 1 },
    ],
  });
  assert.equal(c.mediaType, SIGNING_CONFIG_MEDIA_TYPE_V02);
  assert.deepEqual(c.tsaConfig, { selector: 'ANY' });
  assert.deepEqual(c.caUrls, [{ url: 'https://sign.acme.test', majorApiVersion: 1, validFor: { start: validFrom }, operator: 'acme' }]);
  assert.deepEqual(parseSigningConfig(JSON.parse(JSON.stringify(serializeSigningConfig(c)))), c);
  const s = selectServices(c, new Date('2025-01-01T00:00:00Z'));
  assert.equal(s.tlogs[0]!.majorApiVersion, 2);
  assert.equal(s.oidc?.url, 'https://sign.acme.test/oidc');
  const bare = buildSigningConfig({
    operator: 'acme',
    validFrom,
    caUrl: 'https://ca',
    tsaUrl: 'https://tsa/ts',
    rekorTlogConfig: { selector: 'ALL' },
  });
  assert.deepEqual([bare.oidcUrls, bare.rekorTlogUrls, bare.rekorTlogConfig], [[], [], { selector: 'ALL' }]);
});
