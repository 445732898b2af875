// Container images end to end, with real peers only: docker-registry (distribution 2.8) started
// here, images pushed by skopeo, the dev instance (IdP, CA, TSA, log), and the waxseal CLI in a
// child process: keyless sign and verify in both of cosign's formats, --recursive, attestations,
// and the attacks the formats must catch (a signature moved to another digest, a re-tagged image).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  COSIGN,
  EMPTY_JSON,
  MEDIA_TYPES,
  bundleReferrerManifest,
  legacySignatureImage,
  RegistryClient,
  digestOf,
  legacyTag,
  parseSimpleSigning,
  serializeIndex,
} from '../../../../packages/oci/src/index.ts';
import { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from '../../../../packages/oci/test/registry-fixture.ts';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-image-');

describe('container images: sign, attest and verify in a registry', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  const client = new RegistryClient({ credentials: () => undefined });
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  const token = (email: string) => fetchDevToken(dev.stack.issuer, email);
  const sign = async (image: string, email: string, ...extra: string[]) =>
    runCli(['sign', image, '--signing-config', dev.stack.signingConfigPath, '--identity-token', await token(email), ...extra]);
  const trust = (email: string) => [
    '--trusted-root',
    dev.stack.trustedRootPath,
    '--certificate-identity',
    email,
    '--certificate-oidc-issuer',
    dev.stack.issuer,
  ];
  const verify = (image: string, email: string, ...extra: string[]) => runCli(['verify', image, ...trust(email), ...extra]);
  const repo = (repository: string) => ({ registry: reg.host, repository });
  const ok = (r: { code: number; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);

  test('bundle format (default): sign by tag, verify by tag and by digest; the wrong signer fails', async () => {
    const digest = await pushImage(reg, 'acme/app:v1', 'bundle-1');
    const image = `${reg.host}/acme/app:v1`;
    const s = await sign(image, 'alice@example.com');
    ok(s, 'sign');
    assert.match(s.stderr, /is a tag: signing its current digest/);
    // distribution 2.8 has no referrers API: the signature is indexed under the tag schema.
    const refs = await client.referrers(repo('acme/app'), digest, COSIGN.bundleArtifactType);
    assert.equal(refs.via, 'tag');
    assert.equal(refs.descriptors.length, 1);
    assert.equal(refs.descriptors[0]!.annotations?.[COSIGN.annotations.bundlePredicateType], COSIGN.signPredicateType);
    const m = await client.getManifest(repo('acme/app'), refs.descriptors[0]!.digest);
    assert.equal(m.parsed.kind, 'manifest');
    if (m.parsed.kind === 'manifest') {
      assert.equal(m.parsed.manifest.artifactType, COSIGN.bundleArtifactType);
      assert.equal(m.parsed.manifest.config.mediaType, MEDIA_TYPES.ociEmpty);
      assert.equal(m.parsed.manifest.subject?.digest, digest);
      assert.equal(m.parsed.manifest.annotations?.[COSIGN.annotations.bundleContent], 'dsse-envelope');
    }
    for (const ref of [image, `${reg.host}/acme/app@${digest}`]) {
      const v = await verify(ref, 'alice@example.com', '--output', 'json');
      ok(v, `verify ${ref}`);
      const out = JSON.parse(v.stdout) as { digest: string; verified: { format: string; signer: { identity: string } }[] };
      assert.equal(out.digest, digest);
      assert.deepEqual(
        out.verified.map((x) => [x.format, x.signer.identity]),
        [['bundle', 'alice@example.com']],
      );
    }
    failedWithCode(await verify(image, 'mallory@example.com'), 'ERR_VERIFY_IDENTITY');
  });

  test('legacy format: cosign SIGNATURE_SPEC layout, and a second signature keeps the first', async () => {
    const digest = await pushImage(reg, 'acme/legacy:v1', 'legacy-1');
    const image = `${reg.host}/acme/legacy@${digest}`;
    ok(await sign(image, 'alice@example.com', '--new-bundle-format=false', '-a', 'team=blue'), 'sign 1');
    ok(await sign(image, 'bob@example.com', '--new-bundle-format=false'), 'sign 2');
    const m = await client.getManifest(repo('acme/legacy'), legacyTag(digest, 'sig'));
    assert.equal(m.parsed.kind, 'manifest');
    if (m.parsed.kind !== 'manifest') return;
    const { manifest } = m.parsed;
    assert.equal(manifest.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(manifest.config.mediaType, MEDIA_TYPES.ociConfig);
    assert.equal(manifest.layers.length, 2);
    const config = JSON.parse(Buffer.from(await client.getBlob(repo('acme/legacy'), manifest.config)).toString());
    assert.deepEqual(
      config.rootfs.diff_ids,
      manifest.layers.map((l) => l.digest),
    );
    for (const layer of manifest.layers) {
      assert.equal(layer.mediaType, COSIGN.simpleSigningMediaType);
      assert.ok(layer.annotations?.[COSIGN.annotations.signature], 'signature annotation');
      assert.match(layer.annotations?.[COSIGN.annotations.certificate] ?? '', /^-----BEGIN CERTIFICATE-----\n/);
      assert.ok(JSON.parse(layer.annotations?.[COSIGN.annotations.rfc3161] ?? '{}').SignedRFC3161Timestamp, 'timestamp annotation');
      // The dev instance's Rekor v1 log vouched for it: cosign's Rekor bundle with the SET.
      const rekor = JSON.parse(layer.annotations?.[COSIGN.annotations.bundle] ?? '{}');
      assert.ok(rekor.SignedEntryTimestamp && rekor.Payload?.body && rekor.Payload?.logID, 'Rekor bundle annotation');
      const payload = await client.getBlob(repo('acme/legacy'), layer);
      const p = parseSimpleSigning(payload);
      assert.equal(p.dockerManifestDigest, digest);
      assert.equal(p.type, 'cosign container image signature');
      assert.equal(p.dockerReference, `${reg.host}/acme/legacy`);
    }
    // The simple-signing payload is byte for byte what cosign writes (Go's field order, optional).
    const first = Buffer.from(await client.getBlob(repo('acme/legacy'), manifest.layers[0]!)).toString();
    assert.equal(
      first,
      `{"critical":{"identity":{"docker-reference":"${reg.host}/acme/legacy"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":{"team":"blue"}}`,
    );
    for (const who of ['alice@example.com', 'bob@example.com']) {
      const v = await verify(image, who, '--json');
      ok(v, `verify as ${who}`);
      const out = JSON.parse(v.stdout) as { verified: { format: string }[]; failed: unknown[] };
      assert.equal(out.verified.length, 1);
      assert.equal(out.verified[0]!.format, 'legacy');
      assert.equal(out.failed.length, 1, 'the other signer is listed as not matching');
    }
  });

  test('--recursive signs the index and every platform manifest; each verifies', async () => {
    const indexDigest = await pushImage(reg, 'acme/multi:v1', 'multi-1', ['linux/amd64', 'linux/arm64']);
    const idx = await client.getManifest(repo('acme/multi'), indexDigest);
    assert.equal(idx.parsed.kind, 'index');
    if (idx.parsed.kind !== 'index') return;
    const platforms = idx.parsed.index.manifests.map((d) => d.digest);
    ok(await sign(`${reg.host}/acme/multi@${indexDigest}`, 'alice@example.com', '--recursive'), 'sign -r');
    for (const d of [indexDigest, ...platforms]) ok(await verify(`${reg.host}/acme/multi@${d}`, 'alice@example.com'), `verify ${d}`);
    // Without --recursive, only the index is signed.
    const other = await pushImage(reg, 'acme/multi2:v1', 'multi-2', ['linux/amd64', 'linux/arm64']);
    ok(await sign(`${reg.host}/acme/multi2@${other}`, 'alice@example.com', '--new-bundle-format=false'), 'sign index only');
    const idx2 = await client.getManifest(repo('acme/multi2'), other);
    if (idx2.parsed.kind !== 'index') return assert.fail('index');
    failedWithCode(
      await verify(`${reg.host}/acme/multi2@${idx2.parsed.index.manifests[0]!.digest}`, 'alice@example.com'),
      'ERR_VERIFY_THRESHOLD',
      /no signatures found/,
    );
  });

  test('a signature made for one digest does not verify another (both formats)', async () => {
    const a = await pushImage(reg, 'acme/moved:a', 'moved-a');
    const b = await pushImage(reg, 'acme/moved:b', 'moved-b');
    ok(await sign(`${reg.host}/acme/moved@${a}`, 'alice@example.com', '--new-bundle-format=false'), 'legacy sign a');
    ok(await sign(`${reg.host}/acme/moved@${a}`, 'alice@example.com'), 'bundle sign a');
    // Legacy: copy a's signature manifest to b's tag.
    const sigA = await client.getManifest(repo('acme/moved'), legacyTag(a, 'sig'));
    await client.putManifest(repo('acme/moved'), legacyTag(b, 'sig'), sigA.bytes, MEDIA_TYPES.ociManifest);
    // Bundle: list a's referrer under b's referrers tag.
    const refsA = await client.referrers(repo('acme/moved'), a, COSIGN.bundleArtifactType);
    const listed = serializeIndex({ schemaVersion: 2, manifests: refsA.descriptors });
    await client.putManifest(repo('acme/moved'), b.replace(':', '-'), listed, MEDIA_TYPES.ociIndex);
    // Bundles come first: the copied bundle is for another subject.
    failedWithCode(await verify(`${reg.host}/acme/moved@${b}`, 'alice@example.com'), 'ERR_VERIFY_ARTIFACT');
    // With the bundle index gone, the legacy copy is read: its payload names a.
    await client.putManifest(
      repo('acme/moved'),
      b.replace(':', '-'),
      serializeIndex({ schemaVersion: 2, manifests: [] }),
      MEDIA_TYPES.ociIndex,
    );
    const r = await verify(`${reg.host}/acme/moved@${b}`, 'alice@example.com');
    failedWithCode(r, 'ERR_VERIFY_ARTIFACT', new RegExp(`signature is for ${a}`));
    assert.match(r.stderr, /\[check: image\.digest\]/);
    ok(await verify(`${reg.host}/acme/moved@${a}`, 'alice@example.com'), 'a still verifies');
  });

  test('re-tagging an image to another digest is caught; an unsigned image has no signatures', async () => {
    await pushImage(reg, 'acme/retag:v1', 'retag-1');
    ok(await sign(`${reg.host}/acme/retag:v1`, 'alice@example.com'), 'sign v1');
    ok(await verify(`${reg.host}/acme/retag:v1`, 'alice@example.com'), 'verify v1');
    const moved = await pushImage(reg, 'acme/retag:v1', 'retag-evil');
    const r = await verify(`${reg.host}/acme/retag:v1`, 'alice@example.com');
    failedWithCode(r, 'ERR_VERIFY_THRESHOLD', new RegExp(`no signatures found for ${reg.host}/acme/retag@${moved}`));
    assert.match(r.stderr, /\[check: image\.signatures\]/);
  });

  test('attest and verify-attestation, both formats; the predicate type is enforced', async () => {
    const digest = await pushImage(reg, 'acme/att:v1', 'att-1');
    const image = `${reg.host}/acme/att@${digest}`;
    const predicate = join(dev.dir, 'predicate.json');
    writeFileSync(predicate, JSON.stringify({ buildType: 'https://example.com/build/v1', ok: true }));
    const attest = async (...extra: string[]) =>
      runCli([
        'attest',
        image,
        '--predicate',
        predicate,
        '--signing-config',
        dev.stack.signingConfigPath,
        '--identity-token',
        await token('alice@example.com'),
        ...extra,
      ]);
    ok(await attest('--type', 'slsaprovenance1'), 'attest bundle');
    const v = await runCli(['verify-attestation', image, '--type', 'slsaprovenance1', ...trust('alice@example.com'), '--json']);
    ok(v, 'verify-attestation');
    const out = JSON.parse(v.stdout) as { verified: { format: string; predicateType: string }[] };
    assert.deepEqual(
      out.verified.map((x) => [x.format, x.predicateType]),
      [['bundle', 'https://slsa.dev/provenance/v1']],
    );
    failedWithCode(
      await runCli(['verify-attestation', image, '--type', 'spdxjson', ...trust('alice@example.com')]),
      'ERR_VERIFY_THRESHOLD',
    );
    // An attestation is not an image signature.
    failedWithCode(await verify(image, 'alice@example.com'), 'ERR_VERIFY_THRESHOLD');

    const digest2 = await pushImage(reg, 'acme/att:v2', 'att-2');
    const image2 = `${reg.host}/acme/att@${digest2}`;
    ok(
      await runCli([
        'attest',
        image2,
        '--predicate',
        predicate,
        '--type',
        'https://example.com/custom/v1',
        '--new-bundle-format=false',
        '--signing-config',
        dev.stack.signingConfigPath,
        '--identity-token',
        await token('alice@example.com'),
      ]),
      'attest legacy',
    );
    const att = await client.getManifest(repo('acme/att'), legacyTag(digest2, 'att'));
    if (att.parsed.kind !== 'manifest') return assert.fail('att manifest');
    assert.equal(att.parsed.manifest.layers[0]!.mediaType, COSIGN.dsseMediaType);
    assert.equal(att.parsed.manifest.layers[0]!.annotations?.predicateType, 'https://example.com/custom/v1');
    ok(
      await runCli(['verify-attestation', image2, '--type', 'https://example.com/custom/v1', ...trust('alice@example.com')]),
      'verify legacy att',
    );
    ok(await runCli(['verify-attestation', image2, ...trust('alice@example.com')]), 'verify legacy att, any type');
    assert.equal(digestOf(att.bytes), att.digest);
  });

  test('attachments that are not what their media type says are named in a clear error', async () => {
    const x = await pushImage(reg, 'acme/bad:x', 'bad-x');
    const payload = new TextEncoder().encode('#!/bin/sh\necho not a signature\n');
    const up = await client.putBlob(repo('acme/bad'), payload);
    const { config, manifest } = legacySignatureImage(
      [],
      [{ mediaType: 'application/octet-stream', payload, annotations: { [COSIGN.annotations.signature]: 'AQ==' } }],
    );
    await client.putBlob(repo('acme/bad'), config);
    await client.putManifest(repo('acme/bad'), legacyTag(x, 'sig'), manifest, MEDIA_TYPES.ociManifest);
    assert.equal(up.digest, digestOf(payload));
    const r = await verify(`${reg.host}/acme/bad@${x}`, 'alice@example.com');
    failedWithCode(r, 'ERR_INVALID_INPUT', new RegExp(`acme/bad@${x}.*is not application/vnd.dev.cosign.simplesigning.v1\\+json`));
    assert.match(r.stderr, /\[check: image\.layer\]/);

    // A "bundle" layer that is no bundle.
    const y = await pushImage(reg, 'acme/bad:y', 'bad-y');
    const yDesc = { mediaType: MEDIA_TYPES.ociManifest, digest: y, size: (await client.getManifest(repo('acme/bad'), y)).bytes.length };
    const notBundle = new TextEncoder().encode('{"hello":"world"}');
    await client.putBlob(repo('acme/bad'), notBundle);
    await client.putBlob(repo('acme/bad'), EMPTY_JSON);
    const ref = bundleReferrerManifest(yDesc, notBundle, {
      content: 'dsse-envelope',
      predicateType: COSIGN.signPredicateType,
      created: new Date(),
    });
    const put = await client.putManifest(repo('acme/bad'), digestOf(ref.manifest), ref.manifest, MEDIA_TYPES.ociManifest);
    await client.addToReferrersTag(repo('acme/bad'), y, {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: put.digest,
      size: ref.manifest.length,
      artifactType: COSIGN.bundleArtifactType,
      annotations: ref.annotations,
    });
    const r2 = await verify(`${reg.host}/acme/bad@${y}`, 'alice@example.com');
    failedWithCode(r2, 'ERR_BUNDLE_INVALID', new RegExp(`acme/bad@${y}: ${put.digest}`));
  });
});
