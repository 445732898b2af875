import { fileURLToPath } from 'node:url';
// Key-based image signing end to end, with real peers only: docker-registry started here, images
// pushed by skopeo, the dev instance (TSA, log), and the waxseal CLI in a child process.
// generate-key-pair then sign --key / verify --key in both of cosign's formats; cosign's own key
// files (the shared vectors) sign and verify with their public keys; another key is refused; the
// legacy layer is what SIGNATURE_SPEC.md describes for key signatures (no certificate annotations);
// verify-attestation --policy (CEL) passes and fails.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { COSIGN, RegistryClient, legacyTag, parseSimpleSigning } from '../../../../packages/oci/src/index.ts';
import { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from '../../../../packages/oci/test/registry-fixture.ts';
import { decryptCosignKey, parseCosignKey } from '../../../../packages/keys/src/cosign-key.ts';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-image-key-');
const VECTORS =
  process.env.WAXSEAL_COSIGN_KEY_VECTORS ?? fileURLToPath(new URL('../../../../../shared/vectors/cosign-keys', import.meta.url));
const skipVectors = existsSync(join(VECTORS, 'sigstore-labeled.key')) ? false : `cosign key vectors not found in ${VECTORS}`;

describe('container images signed with keys (cosign --key)', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  const client = new RegistryClient({ credentials: () => undefined });
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  const PW = { COSIGN_PASSWORD: 'correct horse' };
  const repo = (repository: string) => ({ registry: reg.host, repository });
  const ok = (r: { code: number; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);
  const signWithKey = (image: string, key: string, env: Record<string, string>, ...extra: string[]) =>
    runCli(['sign', image, '--key', key, '--signing-config', dev.stack.signingConfigPath, ...extra], { env });
  const verifyWithKey = (image: string, pub: string, ...extra: string[]) =>
    runCli(['verify', image, '--key', pub, '--trusted-root', dev.stack.trustedRootPath, ...extra]);

  let keyPrefix: string;
  before(async () => {
    keyPrefix = join(dev.dir, 'cosign');
    ok(await runCli(['generate-key-pair', '--output-key-prefix', keyPrefix], { env: PW }), 'generate-key-pair');
  });

  test('generate-key-pair writes cosign.key (0600, cosign’s structure) and cosign.pub; refuses to overwrite without -y', async () => {
    const key = `${keyPrefix}.key`;
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const ours = parseCosignKey(readFileSync(key, 'utf8'));
    assert.equal(ours.label, 'ENCRYPTED SIGSTORE PRIVATE KEY');
    if (!skipVectors) {
      const theirs = parseCosignKey(readFileSync(join(VECTORS, 'sigstore-labeled.key'), 'utf8'));
      assert.deepEqual(ours.fields, theirs.fields);
      assert.equal(ours.label, theirs.label);
      assert.deepEqual([ours.kdf.params.r, ours.kdf.params.p], [theirs.kdf.params.r, theirs.kdf.params.p]);
    }
    // The public key file is the private key's.
    const priv = decryptCosignKey(readFileSync(key, 'utf8'), PW.COSIGN_PASSWORD);
    assert.equal(
      createPublicKey(priv).export({ format: 'pem', type: 'spki' }),
      createPublicKey(readFileSync(`${keyPrefix}.pub`, 'utf8')).export({ format: 'pem', type: 'spki' }),
    );
    const before = readFileSync(key, 'utf8');
    failedWithCode(await runCli(['generate-key-pair', '--output-key-prefix', keyPrefix], { env: PW }), 'ERR_CONFLICT', /exists/);
    assert.equal(readFileSync(key, 'utf8'), before, 'the key was not replaced');
    // No password source at all: a one-line usage error (stdin is not a terminal here).
    const r = await runCli(['generate-key-pair', '--output-key-prefix', join(dev.dir, 'nopw')], { env: { COSIGN_PASSWORD: undefined } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /COSIGN_PASSWORD/);
    assert.equal(existsSync(join(dev.dir, 'nopw.key')), false);
  });

  test('bundle format: sign --key, verify --key; the bundle names the key by its hint; another key is refused', async () => {
    const digest = await pushImage(reg, 'keyed/app:v1', 'key-bundle-1');
    const image = `${reg.host}/keyed/app@${digest}`;
    ok(await signWithKey(image, `${keyPrefix}.key`, PW), 'sign --key');
    const refs = await client.referrers(repo('keyed/app'), digest, COSIGN.bundleArtifactType);
    assert.equal(refs.descriptors.length, 1);
    const m = await client.getManifest(repo('keyed/app'), refs.descriptors[0]!.digest);
    assert.equal(m.parsed.kind, 'manifest');
    if (m.parsed.kind !== 'manifest') return;
    const bundle = JSON.parse(Buffer.from(await client.getBlob(repo('keyed/app'), m.parsed.manifest.layers[0]!)).toString());
    assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.ok(bundle.verificationMaterial.publicKey?.hint, 'a publicKey hint, no certificate');
    assert.equal(bundle.verificationMaterial.certificate, undefined);
    assert.equal(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps?.length, 1, 'the TSA timestamped it');
    const v = await verifyWithKey(image, `${keyPrefix}.pub`, '--json');
    ok(v, 'verify --key');
    const out = JSON.parse(v.stdout) as { verified: { format: string; signer: { publicKey?: boolean } }[] };
    assert.deepEqual(
      out.verified.map((x) => [x.format, x.signer.publicKey]),
      [['bundle', true]],
    );
    // Another key: generate one and verify with it.
    const other = join(dev.dir, 'other');
    ok(await runCli(['generate-key-pair', '--output-key-prefix', other], { env: PW }), 'second key');
    failedWithCode(await verifyWithKey(image, `${other}.pub`), 'ERR_VERIFY_SIGNATURE');
    // Keyless identity flags do not accept a key signature.
    const r = await runCli([
      'verify',
      image,
      '--trusted-root',
      dev.stack.trustedRootPath,
      '--certificate-identity',
      'a@example.com',
      '--certificate-oidc-issuer',
      dev.stack.issuer,
    ]);
    assert.equal(r.code, 1, r.stderr);
    // The wrong password.
    failedWithCode(await signWithKey(image, `${keyPrefix}.key`, { COSIGN_PASSWORD: 'nope' }), 'ERR_INVALID_INPUT', /wrong password/);
  });

  test('legacy format: the layer carries the signature and timestamp, no certificate (SIGNATURE_SPEC.md)', async () => {
    const digest = await pushImage(reg, 'keyed/legacy:v1', 'key-legacy-1');
    const image = `${reg.host}/keyed/legacy@${digest}`;
    ok(await signWithKey(image, `${keyPrefix}.key`, PW, '--new-bundle-format=false', '--tlog-upload=false', '-a', 'team=red'), 'sign');
    const m = await client.getManifest(repo('keyed/legacy'), legacyTag(digest, 'sig'));
    assert.equal(m.parsed.kind, 'manifest');
    if (m.parsed.kind !== 'manifest') return;
    assert.equal(m.parsed.manifest.layers.length, 1);
    const layer = m.parsed.manifest.layers[0]!;
    assert.equal(layer.mediaType, COSIGN.simpleSigningMediaType);
    const a = layer.annotations ?? {};
    assert.ok(a[COSIGN.annotations.signature], 'signature annotation');
    assert.equal(a[COSIGN.annotations.certificate], undefined, 'no certificate annotation');
    assert.equal(a[COSIGN.annotations.chain], undefined, 'no chain annotation');
    assert.equal(a[COSIGN.annotations.bundle], undefined, 'no Rekor bundle with --tlog-upload=false');
    assert.ok(JSON.parse(a[COSIGN.annotations.rfc3161] ?? '{}').SignedRFC3161Timestamp, 'rfc3161timestamp annotation');
    const p = parseSimpleSigning(await client.getBlob(repo('keyed/legacy'), layer));
    assert.equal(p.dockerManifestDigest, digest);
    assert.deepEqual(p.optional, { team: 'red' });
    // The dev trusted root lists a log, and this signature has no entry in it.
    failedWithCode(await verifyWithKey(image, `${keyPrefix}.pub`), 'ERR_VERIFY_THRESHOLD');
    const v = await verifyWithKey(image, `${keyPrefix}.pub`, '--insecure-ignore-tlog', '--json');
    ok(v, 'verify --key legacy');
    const out = JSON.parse(v.stdout) as { verified: { format: string; annotations?: unknown }[] };
    assert.deepEqual(
      out.verified.map((x) => [x.format, x.annotations]),
      [['legacy', { team: 'red' }]],
    );
    // Logged this time (the signing config's Rekor v1 log): the Rekor bundle annotation appears.
    const digest2 = await pushImage(reg, 'keyed/legacy2:v1', 'key-legacy-2');
    const image2 = `${reg.host}/keyed/legacy2@${digest2}`;
    ok(await signWithKey(image2, `${keyPrefix}.key`, PW, '--new-bundle-format=false'), 'sign logged');
    const m2 = await client.getManifest(repo('keyed/legacy2'), legacyTag(digest2, 'sig'));
    if (m2.parsed.kind !== 'manifest') return assert.fail('manifest');
    const a2 = m2.parsed.manifest.layers[0]!.annotations ?? {};
    assert.equal(a2[COSIGN.annotations.certificate], undefined);
    const rekor = JSON.parse(a2[COSIGN.annotations.bundle] ?? '{}');
    assert.ok(rekor.SignedEntryTimestamp && rekor.Payload?.body, 'Rekor bundle annotation');
    const body = JSON.parse(Buffer.from(rekor.Payload.body, 'base64').toString());
    assert.equal(body.kind, 'hashedrekord');
    assert.match(Buffer.from(body.spec.signature.publicKey.content, 'base64').toString(), /BEGIN PUBLIC KEY/);
    ok(await verifyWithKey(image2, `${keyPrefix}.pub`), 'verify logged legacy with the log required');
  });

  test('cosign’s own key files sign and verify with their public keys; a SEC1 one and plain PEM keys are refused', {
    skip: skipVectors,
  }, async () => {
    const digest = await pushImage(reg, 'keyed/vectors:v1', 'key-vectors-1');
    const image = `${reg.host}/keyed/vectors@${digest}`;
    for (const name of ['sigstore-labeled.key', 'cosign-labeled-rsa.key']) {
      const keyFile = join(VECTORS, name);
      const pub = join(dev.dir, `${name}.pub`);
      writeFileSync(
        pub,
        createPublicKey(decryptCosignKey(readFileSync(keyFile, 'utf8'), 'hello')).export({ format: 'pem', type: 'spki' }) as string,
      );
      for (const format of ['true', 'false']) {
        ok(
          await signWithKey(image, keyFile, { COSIGN_PASSWORD: 'hello' }, `--new-bundle-format=${format}`),
          `sign with ${name} (${format})`,
        );
      }
      ok(await verifyWithKey(image, pub), `verify ${name}`);
    }
    failedWithCode(
      await signWithKey(image, join(VECTORS, 'cosign-labeled-ec-sec1.key'), { COSIGN_PASSWORD: 'hello' }),
      'ERR_KEY_UNSUPPORTED',
      /SEC1/,
    );
    // A plain PEM key is not what cosign's --key reads: import-key-pair converts it.
    const plain = join(dev.dir, 'plain.pem');
    writeFileSync(
      plain,
      decryptCosignKey(readFileSync(join(VECTORS, 'sigstore-labeled.key'), 'utf8'), 'hello').export({ format: 'pem', type: 'pkcs8' }),
    );
    failedWithCode(await signWithKey(image, plain, PW), 'ERR_KEY_UNSUPPORTED', /import-key-pair/);
    const imported = join(dev.dir, 'imported');
    ok(await runCli(['import-key-pair', '--key', plain, '--output-key-prefix', imported], { env: PW }), 'import-key-pair');
    assert.equal(statSync(`${imported}.key`).mode & 0o777, 0o600);
    ok(await signWithKey(image, `${imported}.key`, PW), 'sign with the imported key');
    ok(await verifyWithKey(image, `${imported}.pub`), 'verify the imported key');
  });

  test('attest --key and verify-attestation --key --policy (CEL): passes, fails with the reason, refuses CUE/Rego', async () => {
    const digest = await pushImage(reg, 'keyed/att:v1', 'key-att-1');
    const image = `${reg.host}/keyed/att@${digest}`;
    const predicate = join(dev.dir, 'prov.json');
    writeFileSync(
      predicate,
      JSON.stringify({ buildType: 'https://example.com/ci@v1', builder: { id: 'https://ci.example.com' }, steps: 3 }),
    );
    for (const format of ['true', 'false']) {
      ok(
        await runCli(
          [
            'attest',
            image,
            '--key',
            `${keyPrefix}.key`,
            '--predicate',
            predicate,
            '--type',
            'slsaprovenance1',
            '--signing-config',
            dev.stack.signingConfigPath,
            `--new-bundle-format=${format}`,
          ],
          { env: PW },
        ),
        `attest --key (${format})`,
      );
    }
    const policy = (name: string, text: string) => {
      const p = join(dev.dir, name);
      writeFileSync(p, text);
      return p;
    };
    const va = (...extra: string[]) =>
      runCli([
        'verify-attestation',
        image,
        '--key',
        `${keyPrefix}.pub`,
        '--trusted-root',
        dev.stack.trustedRootPath,
        '--type',
        'slsaprovenance1',
        ...extra,
      ]);
    const pass = policy(
      'pass.cel',
      `predicateType == 'https://slsa.dev/provenance/v1' && predicate.buildType.startsWith('https://example.com/') && predicate.steps >= 3 && subject[0].digest.sha256 == '${digest.slice(7)}'`,
    );
    const v = await va('--policy', pass, '--json');
    ok(v, 'policy passes');
    assert.equal((JSON.parse(v.stdout) as { verified: unknown[] }).verified.length, 1, 'the bundle attestation (bundles are read first)');
    const fail = policy('fail.cel', `predicate.builder.id == 'https://other.example.com'`);
    failedWithCode(await va('--policy', fail), 'ERR_VERIFY_DSSE', /does not satisfy the policy.*evaluated to false/);
    const notBool = policy('notbool.cel', 'predicate.steps');
    failedWithCode(await va('--policy', notBool), 'ERR_VERIFY_DSSE', /must evaluate to a bool/);
    const syntax = policy('syntax.cel', 'predicate.steps >=');
    failedWithCode(await va('--policy', syntax), 'ERR_INVALID_INPUT', /invalid CEL expression/);
    for (const lang of ['policy.cue', 'policy.rego']) {
      const r = await va('--policy', policy(lang, 'x'));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /takes a CEL expression, not CUE or Rego/);
    }
  });
});
