// Keyless signing end to end on the all-in-one dev instance, with real peers only:
// oidc-provider (the embedded IdP, driven through its login and consent pages), our CA and TSA,
// the waxseal CLI, sigstore-js (@sigstore/sign and @sigstore/verify) and openssl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  FulcioSigner,
  TSAWitness,
  RekorWitness,
  MessageSignatureBundleBuilder,
  DSSEBundleBuilder,
  bundleBuilderFromSigningConfig,
} from '@sigstore/sign';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { TrustedRoot, SigningConfig } from '@sigstore/protobuf-specs';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { serializeSigningConfig, serializeTrustedRoot } from '../../../../packages/bundle/src/index.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { fromBase64 } from '../../../../packages/core/src/bytes.ts';
import { parseCertificate, fulcioExtensions } from '../../../../packages/core/src/x509.ts';
import type { ErrorCode } from '@waxseal/core';
import { failedWithCode, runCli, signBlob, signBlobAs } from '../helpers/cli.ts';
import { opensslVerifyLeaf, opensslVerifyTimestamp, splitPemChain } from '../helpers/openssl.ts';
import { clickThroughLogin } from '../helpers/browser.ts';

let artifact: string;
const dev = useDevStack('wx-e2e-', {
  ready: ({ dir }) => {
    artifact = join(dir, 'artifact.txt');
    writeFileSync(artifact, 'hello, waxseal\n');
  },
});

/** The trusted root and the expected signer, as verify-blob and verify-blob-attestation take them. */
const signedBy = (identity: string) => [
  '--trusted-root',
  dev.stack.trustedRootPath,
  '--certificate-identity',
  identity,
  '--certificate-oidc-issuer',
  dev.stack.issuer,
];
const verifyArgs = (bundle: string, identity: string, file = artifact) => ['verify-blob', file, '--bundle', bundle, ...signedBy(identity)];
const verifyAttestationArgs = (bundle: string, type: string, identity: string) => [
  'verify-blob-attestation',
  artifact,
  '--bundle',
  bundle,
  '--type',
  type,
  ...signedBy(identity),
];

test('a real OIDC login through the embedded IdP, then sign-blob and verify-blob', async () => {
  const { dir, stack } = dev;
  const configDir = join(dir, 'config-login');
  // The CLI prints the authorization URL on stderr: wait for that line (or for the CLI to exit,
  // which fails the test; runCli bounds the whole run).
  let printed!: (url: string) => void;
  const authUrlPrinted = new Promise<string>((resolve) => (printed = resolve));
  let stderrSoFar = '';
  const loginDone = runCli(['login', '--issuer', stack.issuer, '--no-browser', '--json'], {
    env: { WAXSEAL_CONFIG_DIR: configDir },
    onStderr: (chunk) => {
      stderrSoFar += chunk;
      const url = /(http:\/\/\S+\/oidc\/auth\S+)/.exec(stderrSoFar)?.[1];
      if (url) printed(url);
    },
  });
  const authUrl = await Promise.race([
    authUrlPrinted,
    loginDone.then((r) => assert.fail(`waxseal login exited (${r.code}) before printing an authorization URL:\n${r.stderr}`)),
  ]);
  const redirect = new URL(authUrl).searchParams.get('redirect_uri')!;
  const callback = await clickThroughLogin(authUrl, 'alice@example.com', (u) => u.href.startsWith(redirect));
  assert.ok(callback.searchParams.get('code'), 'the IdP redirected back with a code');
  await fetch(callback); // the browser lands on the CLI's loopback server
  const login = await loginDone;
  assert.equal(login.code, 0, login.stderr);
  assert.equal(JSON.parse(login.stdout).identity, 'alice@example.com');

  const bundle = join(dir, 'login.sigstore.json');
  const signed = await runCli(['sign-blob', artifact, '--bundle', bundle, '--signing-config', stack.signingConfigPath], {
    env: { WAXSEAL_CONFIG_DIR: configDir },
  });
  assert.equal(signed.code, 0, signed.stderr);
  const ok = await runCli(verifyArgs(bundle, 'alice@example.com'));
  assert.equal(ok.code, 0, ok.stderr);
  const wrong = await runCli(verifyArgs(bundle, 'mallory@example.com'));
  failedWithCode(wrong, 'ERR_VERIFY_IDENTITY');
});

test("the issued certificate has Fulcio's profile and openssl accepts certificate and timestamp", async () => {
  const { dir, stack } = dev;
  const bundlePath = join(dir, 'bob.sigstore.json');
  await signBlobAs(stack, 'bob@example.com', artifact, bundlePath);
  const bundle = JSON.parse(readFileSync(bundlePath, 'utf8'));
  assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  const leafDer = fromBase64(bundle.verificationMaterial.certificate.rawBytes);
  const leaf = parseCertificate(leafDer);
  assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 10 * 60_000);
  assert.deepEqual(leaf.subject, {});
  const ext = fulcioExtensions(leaf);
  assert.equal(ext.issuer, stack.issuer);
  assert.equal(ext.issuerV1, stack.issuer);
  assert.equal(ext.tokenSubject, 'bob@example.com');

  const [intermediatePem, rootPem] = splitPemChain(readFileSync(join(stack.dataDir, 'ca', 'chain.pem'), 'utf8'));
  writeFileSync(join(dir, 'ca-root.pem'), rootPem!);
  writeFileSync(join(dir, 'ca-int.pem'), intermediatePem!);
  // The certificate is valid for 10 minutes from now, so plain openssl verify applies.
  const out = opensslVerifyLeaf(dir, leafDer, join(dir, 'ca-root.pem'), join(dir, 'ca-int.pem'));
  assert.match(out, /leaf.pem: OK/);
  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' });
  assert.match(text, /X509v3 Subject Alternative Name: critical\s+email:bob@example.com/);
  assert.match(text, /Code Signing/);
  assert.match(text, /1\.3\.6\.1\.4\.1\.57264\.1\.8:/);

  // RFC 3161: the timestamp covers the signature bytes.
  const ts = opensslVerifyTimestamp(dir, bundle, readFileSync(join(stack.dataDir, 'tsa', 'chain.pem'), 'utf8'));
  assert.match(ts, /Verification: OK/);
});

function sigstoreVerifier(tlogThreshold = 1) {
  const root = TrustedRoot.fromJSON(serializeTrustedRoot(dev.stack.trustedRoot));
  return new Verifier(toTrustMaterial(root), { tlogThreshold, ctlogThreshold: 0, timestampThreshold: 1 });
}

test('@sigstore/verify accepts bundles from waxseal sign-blob and attest-blob, and rejects a wrong identity', async () => {
  const { dir, stack } = dev;
  const token = await fetchDevToken(stack.issuer, 'carol@example.com');
  const blob = join(dir, 'carol.sigstore.json');
  const att = join(dir, 'carol.att.sigstore.json');
  const predicate = join(dir, 'predicate.json');
  writeFileSync(predicate, JSON.stringify({ builder: { id: 'https://example.com/builder' } }));
  assert.equal((await signBlob(artifact, blob, stack.signingConfigPath, token)).code, 0);
  const a = await runCli([
    'attest-blob',
    artifact,
    '--predicate',
    predicate,
    '--type',
    'https://slsa.dev/provenance/v1',
    '--bundle',
    att,
    '--signing-config',
    stack.signingConfigPath,
    '--identity-token',
    token,
  ]);
  assert.equal(a.code, 0, a.stderr);

  const verifier = sigstoreVerifier();
  const data = readFileSync(artifact);
  const policy = { subjectAlternativeName: 'carol@example.com', extensions: { issuer: stack.issuer } };
  const blobBundle = bundleFromJSON(JSON.parse(readFileSync(blob, 'utf8')));
  verifier.verify(toSignedEntity(blobBundle, data), policy);
  const attBundle = bundleFromJSON(JSON.parse(readFileSync(att, 'utf8')));
  verifier.verify(toSignedEntity(attBundle), policy);
  // sigstore-js's own error types and codes.
  assert.throws(() => verifier.verify(toSignedEntity(blobBundle, data), { ...policy, subjectAlternativeName: 'dave@example.com' }), {
    name: 'PolicyError',
    code: 'UNTRUSTED_SIGNER_ERROR',
  });
  assert.throws(() => verifier.verify(toSignedEntity(blobBundle, Buffer.from('other data')), policy), {
    name: 'VerificationError',
    code: 'SIGNATURE_ERROR',
  });

  const ok = await runCli(verifyAttestationArgs(att, 'https://slsa.dev/provenance/v1', 'carol@example.com'));
  assert.equal(ok.code, 0, ok.stderr);
});

test('sigstore-js signs with our CA, TSA and log (Rekor v1 URL; Rekor v2 via the signing config); both verifiers accept', async () => {
  const { dir, stack } = dev;
  const token = await fetchDevToken(stack.issuer, 'erin@example.com');
  const signer = new FulcioSigner({ fulcioBaseURL: stack.caUrl, identityProvider: { getToken: async () => token } });
  const tsa = new TSAWitness({ tsaBaseURL: stack.url });
  const rekorV1 = new RekorWitness({ rekorBaseURL: stack.url });
  const builder = new MessageSignatureBundleBuilder({ signer, witnesses: [rekorV1, tsa] });
  const bundle = await builder.create({ data: readFileSync(artifact) });
  assert.equal(bundle.verificationMaterial.tlogEntries[0]?.kindVersion?.version, '0.0.1');
  const path = join(dir, 'sigstore-js.sigstore.json');
  writeFileSync(path, JSON.stringify(bundleToJSON(bundle)));
  const ok = await runCli(verifyArgs(path, 'erin@example.com'));
  assert.equal(ok.code, 0, ok.stderr);
  const policy = { subjectAlternativeName: 'erin@example.com', extensions: { issuer: stack.issuer } };
  sigstoreVerifier(1).verify(toSignedEntity(bundle, readFileSync(artifact)), policy);

  // Rekor v2, chosen by sigstore-js from our signing config.
  const fromConfig = bundleBuilderFromSigningConfig({
    signingConfig: SigningConfig.fromJSON(serializeSigningConfig(stack.signingConfig)),
    identityProvider: { getToken: async () => token },
    bundleType: 'messageSignature',
  });
  const v2bundle = await fromConfig.create({ data: readFileSync(artifact) });
  assert.equal(v2bundle.verificationMaterial.tlogEntries[0]?.kindVersion?.version, '0.0.2');
  sigstoreVerifier(1).verify(toSignedEntity(v2bundle, readFileSync(artifact)), policy);
  const v2path = join(dir, 'sigstore-js-v2.sigstore.json');
  writeFileSync(v2path, JSON.stringify(bundleToJSON(v2bundle)));
  const okV2 = await runCli(verifyArgs(v2path, 'erin@example.com'));
  assert.equal(okV2.code, 0, okV2.stderr);

  const dsse = await new DSSEBundleBuilder({ signer, witnesses: [rekorV1, tsa] }).create({
    data: Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: 'artifact.txt', digest: { sha256: execFileSync('sha256sum', [artifact], { encoding: 'utf8' }).split(' ')[0] } }],
        predicateType: 'https://example.com/p',
        predicate: {},
      }),
    ),
    type: 'application/vnd.in-toto+json',
  });
  const dssePath = join(dir, 'sigstore-js.dsse.sigstore.json');
  writeFileSync(dssePath, JSON.stringify(bundleToJSON(dsse)));
  const okAtt = await runCli(verifyAttestationArgs(dssePath, 'https://example.com/p', 'erin@example.com'));
  assert.equal(okAtt.code, 0, okAtt.stderr);
});

test('tampering with the artifact, signature, certificate or timestamp fails verification and names the check', async () => {
  const { dir, stack } = dev;
  const path = join(dir, 'frank.sigstore.json');
  await signBlobAs(stack, 'frank@example.com', artifact, path);
  const good = JSON.parse(readFileSync(path, 'utf8'));
  const flip = (b64: string, at = 40) => {
    const b = Buffer.from(b64, 'base64');
    b[Math.min(at, b.length - 1)]! ^= 0x01;
    return b.toString('base64');
  };
  // Each fails with the code and the check given (the check is named on stderr too).
  const cases: [string, (b: any) => void, ErrorCode, RegExp][] = [
    ['signature', (b) => (b.messageSignature.signature = flip(b.messageSignature.signature, 20)), 'ERR_VERIFY_SIGNATURE', /^signature: /],
    [
      'certificate',
      (b) => (b.verificationMaterial.certificate.rawBytes = flip(b.verificationMaterial.certificate.rawBytes, 200)),
      'ERR_VERIFY_CERT_PROFILE',
      /^cert\.parse: /,
    ],
    [
      'timestamp',
      (b) => {
        const t = b.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0];
        t.signedTimestamp = flip(t.signedTimestamp, 120);
      },
      'ERR_VERIFY_THRESHOLD',
      /^threshold\.timestamp: .*timestamp\.imprint/,
    ],
    [
      'digest',
      (b) => (b.messageSignature.messageDigest.digest = flip(b.messageSignature.messageDigest.digest, 3)),
      'ERR_VERIFY_ARTIFACT',
      /^artifact\.digest: /,
    ],
  ];
  for (const [name, mutate, code, why] of cases) {
    const b = structuredClone(good);
    mutate(b);
    const p = join(dir, `tampered-${name}.json`);
    writeFileSync(p, JSON.stringify(b));
    const r = await runCli(verifyArgs(p, 'frank@example.com'));
    failedWithCode(r, code, why, name);
    assert.match(r.stderr, /\[check: [a-z.]+\]$/m, `${name}: the message names the check`);
  }
  const other = join(dir, 'other.txt');
  writeFileSync(other, 'not the artifact\n');
  const r = await runCli(verifyArgs(path, 'frank@example.com', other));
  failedWithCode(r, 'ERR_VERIFY_ARTIFACT', /^artifact\.digest: /, 'other artifact');
});
