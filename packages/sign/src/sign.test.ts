// The signing client against real peers run in-process: an OIDC issuer (discovery + JWKS over
// node:http), our CA, our TSA and our transparency log (Rekor v1 and v2 APIs). The bundles it
// builds must round-trip through the bundle codec and verify with @waxseal/verify against a
// trusted root made here from the same CA, TSA and log keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { sha256 } from '../../core/src/crypto.ts';
import { toHex, utf8 } from '../../core/src/bytes.ts';
import {
  BUNDLE_MEDIA_TYPE_V03,
  buildCertificateAuthority,
  buildRekorLogs,
  buildTrustedRoot,
  parseBundleJson,
  serializeBundleJson,
  type Bundle,
  type TrustedRoot,
} from '../../bundle/src/index.ts';
import { Verifier, type VerificationPolicy } from '../../verify/src/index.ts';
import { ephemeralCa, type EphemeralCa } from '../../ca/src/chain.ts';
import { parseIssuerConfig } from '../../ca/src/issuers.ts';
import { startCaServer, type CaService } from '../../ca/src/service.ts';
import { startTestIssuer, type TestIssuer } from '../../ca/test/helpers.ts';
import { generateDevTsaChain, type DevTsaChain } from '../../tsa/src/chain.ts';
import { startTsaServer } from '../../tsa/src/service.ts';
import { startTestLog, HOST, type TestLog } from '../../rekor/test/helpers.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import type { RunningServer } from '../../server/src/http.ts';
import { signDigest, signFile, signStatement, attestFile, statementFor, type SignOptions, type SigningServices } from './sign.ts';
import { makeTlogUploader, v1EntryToTle, type V1LogEntry } from './tlog-client.ts';

const SIGNER = 'dev@example.com';
const PREDICATE_TYPE = 'https://slsa.dev/provenance/v1';

let dir: string;
let issuer: TestIssuer;
let stranger: TestIssuer;
let ca: EphemeralCa;
let caServer: RunningServer & { service: CaService };
let tsa: DevTsaChain;
let tsaServer: RunningServer;
let tsaUrl: string;
let log: TestLog;
let root: TrustedRoot;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wx-sign-'));
  [issuer, stranger] = await Promise.all([startTestIssuer({ path: '/oidc' }), startTestIssuer({ path: '/unknown' })]);
  ca = await ephemeralCa();
  caServer = await startCaServer({
    signer: ca.signer,
    chain: ca.chain,
    issuers: parseIssuerConfig(
      JSON.stringify({ OIDCIssuers: { [issuer.url]: { IssuerURL: issuer.url, ClientID: 'sigstore', Type: 'email' } } }),
    ),
    onInternalError: () => {},
  });
  tsa = await generateDevTsaChain();
  tsaServer = await startTsaServer({ signer: tsa.signer, chain: tsa.chain });
  tsaUrl = `${tsaServer.url}/api/v1/timestamp`;
  const logSigner = generateSigner('ed25519');
  log = await startTestLog({ signer: logSigner });
  // Clients know the log by its origin (a host name), not by the loopback address it listens on.
  const logs = buildRekorLogs({
    origin: HOST,
    publicKey: logSigner.publicKeySpki,
    validFor: { start: new Date(Date.now() - 60_000) },
    v1BaseUrl: `http://${HOST}:${new URL(log.url).port}`,
  });
  root = buildTrustedRoot({
    certificateAuthorities: [buildCertificateAuthority({ uri: caServer.url, chain: ca.chain })],
    timestampAuthorities: [buildCertificateAuthority({ uri: tsaUrl, chain: tsa.chain })],
    tlogs: [logs.v1, logs.v2],
  });
});

after(async () => {
  await Promise.all([caServer?.close(), tsaServer?.close(), log?.close(), issuer?.close(), stranger?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function options(tlog?: 1 | 2): Promise<SignOptions> {
  const services: SigningServices = { caUrl: caServer.url, tsaUrl };
  if (tlog) services.tlog = makeTlogUploader({ url: log.url, majorApiVersion: tlog });
  return { token: await issuer.mint({ sub: 'user-1', email: SIGNER, email_verified: true }), services };
}

const policy = (over: Partial<VerificationPolicy> = {}): VerificationPolicy => ({
  identities: [{ subjectAlternativeName: SIGNER, issuer: issuer.url }],
  ...over,
});

/** No CT log here: SCTs cannot be required. */
const verifier = (tlogThreshold = 1) => new Verifier(root, { skipSctUnsafe: true, tlogThreshold, timestampThreshold: 1 });

/** What a client reads back from the .sigstore.json file must equal what the signer built. */
function roundTrip(b: Bundle): Bundle {
  const again = parseBundleJson(serializeBundleJson(b));
  assert.deepEqual(again, b);
  assert.equal(serializeBundleJson(again), serializeBundleJson(b));
  return again;
}

test('signFile with a Rekor v1 log: a v0.3 bundle that round-trips and verifies', async () => {
  const file = join(dir, 'artifact.txt');
  const bytes = utf8('hello, waxseal\n');
  writeFileSync(file, bytes);
  const b = await signFile(file, await options(1));
  assert.equal(b.mediaType, BUNDLE_MEDIA_TYPE_V03);
  assert.equal(b.verificationMaterial.content.type, 'certificate');
  assert.equal(b.verificationMaterial.rfc3161Timestamps.length, 1);
  assert.equal(b.verificationMaterial.tlogEntries.length, 1);
  assert.deepEqual(b.verificationMaterial.tlogEntries[0]!.kindVersion, { kind: 'hashedrekord', version: '0.0.1' });
  assert.ok(b.verificationMaterial.tlogEntries[0]!.inclusionProof, 'v0.3 entries carry an inclusion proof');
  assert.ok(b.content.type === 'messageSignature' && b.content.messageDigest);
  assert.deepEqual(b.content.messageDigest.digest, sha256(bytes));

  const result = verifier().verify(roundTrip(b), { bytes }, policy());
  assert.equal(result.signer.type === 'certificate' && result.signer.san, SIGNER);
  assert.equal(result.tlogEntries.length, 1);
  assert.equal(result.tlogEntries[0]!.rekorVersion, 1);
  assert.ok(result.timestamps.some((t) => t.source === 'rfc3161'));
  throwsWithCode(() => verifier().verify(b, { bytes: utf8('something else\n') }, policy()), 'ERR_VERIFY_ARTIFACT');
  throwsWithCode(
    () => verifier().verify(b, { bytes }, { identities: [{ subjectAlternativeName: 'eve@example.com', issuer: issuer.url }] }),
    'ERR_VERIFY_IDENTITY',
  );
});

test('attestFile with a Rekor v2 log: a DSSE bundle whose statement names the file', async () => {
  const file = join(dir, 'release.tar');
  const bytes = utf8('release contents');
  writeFileSync(file, bytes);
  const b = await attestFile(file, PREDICATE_TYPE, { buildType: 'test' }, await options(2));
  assert.ok(b.content.type === 'dsseEnvelope');
  const statement = JSON.parse(new TextDecoder().decode(b.content.envelope.payload));
  assert.deepEqual(statement.subject, [{ name: 'release.tar', digest: { sha256: toHex(sha256(bytes)) } }]);
  assert.deepEqual(b.verificationMaterial.tlogEntries[0]!.kindVersion, { kind: 'hashedrekord', version: '0.0.2' });

  const result = verifier().verify(roundTrip(b), { bytes }, policy({ predicateType: PREDICATE_TYPE }));
  assert.equal(result.content, 'dsseEnvelope');
  assert.equal(result.tlogEntries[0]!.rekorVersion, 2);
  throwsWithCode(() => verifier().verify(b, { bytes }, policy({ predicateType: 'https://example.com/other' })), 'ERR_VERIFY_DSSE');
});

test('signStatement with a Rekor v1 log records a dsse entry', async () => {
  const digest = sha256(utf8('payload'));
  const b = await signStatement(statementFor('payload', digest, PREDICATE_TYPE, {}), await options(1));
  assert.deepEqual(b.verificationMaterial.tlogEntries[0]!.kindVersion, { kind: 'dsse', version: '0.0.1' });
  verifier().verify(roundTrip(b), { digest: { algorithm: 'sha256', value: digest } }, policy());
});

test('signDigest without a log: the timestamp alone vouches for the signing time', async () => {
  const digest = sha256(utf8('big artifact'));
  const b = await signDigest(digest, await options());
  assert.deepEqual(b.verificationMaterial.tlogEntries, []);
  const result = verifier(0).verify(roundTrip(b), { digest: { algorithm: 'sha256', value: digest } }, policy());
  assert.equal(result.tlogEntries.length, 0);
  // A trusted root that lists a log wants an entry from it.
  throwsWithCode(() => verifier(1).verify(b, { digest: { algorithm: 'sha256', value: digest } }, policy()), 'ERR_VERIFY_THRESHOLD');
});

test('a log entry that breaks the v0.3 rules is refused before a bundle is handed out', async () => {
  const o = await options();
  const upload = makeTlogUploader({ url: log.url, majorApiVersion: 1 });
  // The log's real answer without its inclusion proof, as a log that only returns a promise would.
  o.services.tlog = async (input) => {
    const { inclusionProof: _, ...entry } = await upload(input);
    return entry;
  };
  await rejectsWithCode(signDigest(sha256(utf8('x')), o), 'ERR_BUNDLE_INVALID', /inclusionProof/);
});

test('refusals of the real peers surface with their codes', async () => {
  const o = await options();
  await rejectsWithCode(
    signDigest(sha256(utf8('x')), { ...o, token: await stranger.mint({ sub: 'x', email: 'x@example.com', email_verified: true }) }),
    'ERR_TOKEN_INVALID',
    /the CA refused/,
  );
  await rejectsWithCode(
    signDigest(sha256(utf8('x')), { ...o, services: { ...o.services, tsaUrl: `${tsaServer.url}/api/v1/nowhere` } }),
    'ERR_INVALID_INPUT',
  );
  await rejectsWithCode(signDigest(new Uint8Array(20), o), 'ERR_INVALID_INPUT', /32 bytes/);
});

test('signFile hashes while the CA certifies: a refused identity or a missing file is reported as such', async () => {
  const o = await options();
  const file = join(dir, 'large.bin');
  writeFileSync(file, new Uint8Array(5 << 20).fill(7));
  // The CA's refusal, not the abort it causes in the hashing, is what the caller sees.
  await rejectsWithCode(
    signFile(file, { ...o, token: await stranger.mint({ sub: 'x', email: 'x@example.com', email_verified: true }) }),
    'ERR_TOKEN_INVALID',
    /the CA refused/,
  );
  // A missing file fails before anything is sent: the fetch is never called.
  let calls = 0;
  const counting: typeof fetch = (...a) => (calls++, fetch(...a));
  await rejectsWithCode(signFile(join(dir, 'missing.bin'), { ...o, fetch: counting }), 'ERR_IO', /ENOENT/);
  await rejectsWithCode(signFile(dir, { ...o, fetch: counting }), 'ERR_IO', /not a file/);
  assert.equal(calls, 0);
});

test('makeTlogUploader: only Rekor API versions 1 and 2', () => {
  throwsWithCode(() => makeTlogUploader({ url: log.url, majorApiVersion: 3 }), 'ERR_CONFIG');
});

test('v1EntryToTle: a Rekor v1 LogEntry becomes the typed entry; malformed ones are refused', () => {
  const body = Buffer.from(JSON.stringify({ apiVersion: '0.0.1', kind: 'hashedrekord', spec: {} })).toString('base64');
  const logId = 'ab'.repeat(32);
  const entry: V1LogEntry = {
    body,
    integratedTime: 1_700_000_000,
    logID: logId,
    logIndex: 7,
    verification: {
      signedEntryTimestamp: 'MEUCIQ==',
      inclusionProof: { logIndex: 7, treeSize: 8, rootHash: 'cd'.repeat(32), hashes: ['ef'.repeat(32)], checkpoint: 'origin\n8\nAA==\n' },
    },
  };
  const tle = v1EntryToTle(entry);
  assert.deepEqual(tle.logId, new Uint8Array(32).fill(0xab));
  assert.deepEqual(tle.kindVersion, { kind: 'hashedrekord', version: '0.0.1' });
  assert.equal(tle.integratedTime, 1_700_000_000);
  assert.equal(tle.inclusionProof?.treeSize, 8);
  assert.deepEqual(tle.inclusionProof?.rootHash, new Uint8Array(32).fill(0xcd));
  assert.deepEqual(tle.inclusionPromise?.signedEntryTimestamp, Uint8Array.of(0x30, 0x45, 0x02, 0x21));

  throwsWithCode(() => v1EntryToTle({ ...entry, body: Buffer.from('not json').toString('base64') }), 'ERR_INVALID_INPUT');
  throwsWithCode(() => v1EntryToTle({ ...entry, logID: 'zz' }), 'ERR_INVALID_INPUT');
  throwsWithCode(() => v1EntryToTle({ ...entry, logIndex: -1 }), 'ERR_INVALID_INPUT', /logIndex/);
  throwsWithCode(
    () => v1EntryToTle({ ...entry, verification: { inclusionProof: { ...entry.verification!.inclusionProof!, treeSize: 7 } } }),
    'ERR_INVALID_INPUT',
    /below the tree size/,
  );
});
