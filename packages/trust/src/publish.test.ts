// Publishing the trust documents: what is written and served is @waxseal/bundle's serialization
// of the typed documents, reads back as the same values, and a document our own parser would
// refuse is never published.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsWithCode } from '@waxseal/testkit';
import {
  buildCertificateAuthority,
  buildRekorLogs,
  buildSigningConfig,
  buildTrustedRoot,
  parseSigningConfigJson,
  parseTrustedRootJson,
  type SigningConfig,
  type TrustedRoot,
} from '../../bundle/src/index.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import { selfSignedRoot } from '../../keys/src/certify.ts';
import { Router, listen, requestListener, type RunningServer } from '../../server/src/http.ts';
import { publishTrustDocuments } from './publish.ts';

let dir: string;
let root: TrustedRoot;
let config: SigningConfig;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wx-publish-'));
  const caSigner = generateSigner();
  const ca = await selfSignedRoot(caSigner, { organization: 'Acme', commonName: 'Acme CA', notAfter: new Date(Date.now() + 86_400_000) });
  const logs = buildRekorLogs({
    origin: 'sign.acme.test',
    publicKey: generateSigner('ed25519').publicKeySpki,
    validFor: { start: new Date('2024-01-01T00:00:00Z') },
    v1BaseUrl: 'https://sign.acme.test',
  });
  root = buildTrustedRoot({
    certificateAuthorities: [buildCertificateAuthority({ uri: 'https://sign.acme.test', chain: [ca] })],
    timestampAuthorities: [buildCertificateAuthority({ uri: 'https://sign.acme.test/api/v1/timestamp', chain: [ca] })],
    tlogs: [logs.v1, logs.v2],
  });
  config = buildSigningConfig({
    operator: 'acme',
    validFrom: ca.notBefore,
    caUrl: 'https://sign.acme.test',
    tsaUrl: 'https://sign.acme.test/api/v1/timestamp',
    rekor: [{ url: 'https://sign.acme.test', majorApiVersion: 2 }],
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the typed documents are written and served as protobuf JSON that reads back equal', async () => {
  const router = new Router();
  const dataDir = mkdtempSync(join(dir, 'ok-'));
  const p = await publishTrustDocuments({ router, baseUrl: 'https://sign.acme.test', dataDir, trustedRoot: root, signingConfig: config });
  assert.equal(p.tuf, undefined);
  assert.deepEqual(parseTrustedRootJson(readFileSync(p.trustedRootPath)), root);
  assert.deepEqual(parseSigningConfigJson(readFileSync(p.signingConfigPath)), config);
  let server: RunningServer | undefined;
  try {
    server = await listen(requestListener({ router }), 0, '127.0.0.1');
    const served = await fetch(`${server.url}/trusted_root.json`);
    assert.equal(served.headers.get('content-type'), 'application/json');
    assert.deepEqual(new Uint8Array(await served.arrayBuffer()), new Uint8Array(readFileSync(p.trustedRootPath)));
    assert.deepEqual(parseSigningConfigJson(await (await fetch(`${server.url}/signing_config.json`)).text()), config);
  } finally {
    await server?.close();
  }
});

test('a document clients would refuse is not published', async () => {
  const dataDir = mkdtempSync(join(dir, 'bad-'));
  // A log key without the start of its validity cannot bound what it vouches for.
  const badRoot: TrustedRoot = { ...root, tlogs: [{ ...root.tlogs[0]!, publicKey: { ...root.tlogs[0]!.publicKey, validFor: {} } }] };
  await rejectsWithCode(
    publishTrustDocuments({ router: new Router(), baseUrl: 'https://x', dataDir, trustedRoot: badRoot, signingConfig: config }),
    'ERR_TRUSTED_ROOT_INVALID',
    /tlogs\[0\]\.publicKey\.validFor\.start: is required/,
  );
  const badConfig: SigningConfig = { ...config, tsaConfig: { selector: 'EXACT' } };
  await rejectsWithCode(
    publishTrustDocuments({ router: new Router(), baseUrl: 'https://x', dataDir, trustedRoot: root, signingConfig: badConfig }),
    'ERR_SIGNING_CONFIG_INVALID',
    /tsaConfig\.count/,
  );
  assert.equal(existsSync(join(dataDir, 'trusted_root.json')), false);
  assert.equal(existsSync(join(dataDir, 'signing_config.json')), false);
});
