// Key signing against real peers run in-process (our TSA and our log, Rekor v1 and v2 APIs): the
// bundles carry the key hint, verify with @waxseal/verify and the public key, and fail with another key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { sha256 } from '../../core/src/crypto.ts';
import { encodePem } from '../../core/src/pem.ts';
import { toBase64, utf8, toHex } from '../../core/src/bytes.ts';
import { INTOTO_STATEMENT_V1 } from '../../core/src/index.ts';
import {
  buildCertificateAuthority,
  buildRekorLogs,
  buildTrustedRoot,
  parseBundleJson,
  serializeBundleJson,
  type TrustedRoot,
} from '../../bundle/src/index.ts';
import { Verifier } from '../../verify/src/index.ts';
import { generateDevTsaChain } from '../../tsa/src/chain.ts';
import { startTsaServer } from '../../tsa/src/service.ts';
import { startTestLog, HOST, type TestLog } from '../../rekor/test/helpers.ts';
import { generateSigner, KeyObjectSigner } from '../../keys/src/memory.ts';
import type { RunningServer } from '../../server/src/http.ts';
import { publicKeyHint, signMessageWithKey, signStatementWithKey } from './sign-with-key.ts';

let tsaServer: RunningServer;
let tsaUrl: string;
let log: TestLog;
let root: TrustedRoot;

before(async () => {
  const tsa = await generateDevTsaChain();
  tsaServer = await startTsaServer({ signer: tsa.signer, chain: tsa.chain });
  tsaUrl = `${tsaServer.url}/api/v1/timestamp`;
  const logSigner = generateSigner('ed25519');
  log = await startTestLog({ signer: logSigner });
  const logs = buildRekorLogs({
    origin: HOST,
    publicKey: logSigner.publicKeySpki,
    validFor: { start: new Date(Date.now() - 60_000) },
    v1BaseUrl: `http://${HOST}:${new URL(log.url).port}`,
  });
  root = buildTrustedRoot({
    certificateAuthorities: [],
    timestampAuthorities: [buildCertificateAuthority({ uri: tsaUrl, chain: tsa.chain })],
    tlogs: [logs.v1, logs.v2],
  });
});

after(async () => {
  await tsaServer?.close();
  await log?.close();
});

const verifier = (tlogThreshold: number) =>
  new Verifier(root, { skipSctUnsafe: true, ctlogThreshold: 0, tlogThreshold, timestampThreshold: 1 });
const pemOf = (s: { publicKeySpki: Uint8Array }) => encodePem('PUBLIC KEY', s.publicKeySpki);

const signers = () => [
  generateSigner('ecdsa-p256'),
  new KeyObjectSigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'memory://rsa'),
];

test('message signature with a key and a timestamp: the hint is base64(SHA-256(SPKI)); verifies with the key only', async () => {
  for (const signer of signers()) {
    const payload = utf8('{"critical":{}}');
    const bundle = await signMessageWithKey(payload, { signer, tsaUrl });
    const vm = bundle.verificationMaterial;
    assert.deepEqual(vm.content, { type: 'publicKey', hint: toBase64(sha256(signer.publicKeySpki)) });
    assert.equal(publicKeyHint(signer.publicKeySpki), (vm.content as { hint: string }).hint);
    assert.equal(vm.rfc3161Timestamps.length, 1);
    assert.equal(vm.tlogEntries.length, 0);
    // Round trip through the JSON codec, then verify.
    const again = parseBundleJson(serializeBundleJson(bundle));
    const r = verifier(0).verify(again, { bytes: payload }, { publicKey: { publicKey: pemOf(signer) } });
    assert.equal(r.signer.type, 'publicKey');
    assert.equal(r.timestamps[0]?.source, 'rfc3161');
    // Another key, or another payload, fails.
    throwsWithCode(
      () => verifier(0).verify(again, { bytes: payload }, { publicKey: { publicKey: pemOf(generateSigner()) } }),
      'ERR_VERIFY_SIGNATURE',
    );
    throwsWithCode(
      () => verifier(0).verify(again, { bytes: utf8('other') }, { publicKey: { publicKey: pemOf(signer) } }),
      'ERR_VERIFY_ARTIFACT',
    );
  }
});

test('a DSSE statement signed with a key, logged in Rekor v1 and v2, verifies with the log required', async () => {
  const signer = generateSigner('ecdsa-p256');
  const digest = sha256(utf8('image manifest'));
  const statement = {
    _type: INTOTO_STATEMENT_V1,
    subject: [{ name: 'img', digest: { sha256: toHex(digest) } }],
    predicateType: 'https://example.com/p',
    predicate: { a: 1 },
  };
  for (const majorApiVersion of [1, 2]) {
    const bundle = await signStatementWithKey(statement, { signer, tsaUrl, tlog: { url: log.url, majorApiVersion } });
    assert.equal(bundle.verificationMaterial.tlogEntries.length, 1, `v${majorApiVersion}`);
    const r = verifier(1).verify(
      parseBundleJson(serializeBundleJson(bundle)),
      { digest: { algorithm: 'sha256', value: digest } },
      { publicKey: { publicKey: pemOf(signer) }, predicateType: 'https://example.com/p' },
    );
    assert.equal(r.tlogEntries.length, 1);
    assert.deepEqual(r.statement?.predicate, { a: 1 });
  }
  // A message signature logged in Rekor v1 (hashedrekord with the public key).
  const b = await signMessageWithKey(utf8('x'), { signer, tsaUrl, tlog: { url: log.url, majorApiVersion: 1 } });
  assert.ok(b.verificationMaterial.tlogEntries[0]?.inclusionPromise, 'Rekor v1 gives a signed entry timestamp');
  verifier(1).verify(b, { bytes: utf8('x') }, { publicKey: { publicKey: pemOf(signer) } });
});

test('Ed25519 keys and unknown log versions are refused before anything is sent', async () => {
  const ed = generateSigner('ed25519');
  await rejectsWithCode(signMessageWithKey(utf8('x'), { signer: ed, tsaUrl }), 'ERR_KEY_UNSUPPORTED', /Ed25519/);
  const signer = generateSigner();
  await rejectsWithCode(signMessageWithKey(utf8('x'), { signer, tsaUrl, tlog: { url: log.url, majorApiVersion: 3 } }), 'ERR_CONFIG');
});

test('without a TSA or log the bundle has no timestamp (and verifies only where none is required)', async () => {
  const signer = generateSigner();
  const b = await signMessageWithKey(utf8('x'), { signer });
  assert.equal(b.verificationMaterial.rfc3161Timestamps.length, 0);
  const lenient = new Verifier(root, {
    skipSctUnsafe: true,
    ctlogThreshold: 0,
    tlogThreshold: 0,
    timestampThreshold: 0,
    observerTimestampThreshold: 0,
  });
  lenient.verify(b, { bytes: utf8('x') }, { publicKey: { publicKey: pemOf(signer) } });
  throwsWithCode(() => verifier(0).verify(b, { bytes: utf8('x') }, { publicKey: { publicKey: pemOf(signer) } }), 'ERR_VERIFY_THRESHOLD');
});
