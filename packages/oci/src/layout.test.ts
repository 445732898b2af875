import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { utf8 } from '@waxseal/core';
import { COSIGN, legacySignatureImage, legacyTag } from './cosign.ts';
import { findBundles, findLegacy, resolveImage } from './image.ts';
import { COSIGN_KIND, COSIGN_KINDS, LayoutStore, REF_NAME, layoutStoreFor, parseLayoutReference } from './layout.ts';
import { EMPTY_JSON, MEDIA_TYPES, digestOf, serializeManifest, type Descriptor } from './manifest.ts';

const root = mkdtempSync(join(tmpdir(), 'wx-layout-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => LayoutStore.init(join(root, `l${n++}`));
const repo = { registry: 'oci:', repository: 'x' };
const index = (s: LayoutStore) => JSON.parse(readFileSync(join(s.dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };

async function image(s: LayoutStore, seed: string, tag?: string): Promise<Descriptor> {
  const config = utf8(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  await s.putBlob(repo, config);
  const m = serializeManifest({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(config), size: config.length },
    layers: [],
  });
  const put = await s.putManifest(repo, tag ?? digestOf(m), m, MEDIA_TYPES.ociManifest);
  return { mediaType: MEDIA_TYPES.ociManifest, digest: put.digest, size: m.length };
}

test('parseLayoutReference: skopeo syntax, digests checked', () => {
  assert.deepEqual(parseLayoutReference('oci:/a/b'), { path: '/a/b' });
  assert.deepEqual(parseLayoutReference('oci:rel/dir:v1.2'), { path: 'rel/dir', tag: 'v1.2' });
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseLayoutReference(`oci:/a@${d}`), { path: '/a', digest: d });
  for (const bad of ['oci:', 'oci::v1', 'oci:/a@sha256:xyz', 'docker://x', 'oci:/a:bad tag']) {
    assert.throws(() => parseLayoutReference(bad), { name: 'WaxsealError', code: 'ERR_INVALID_INPUT' }, bad);
  }
  assert.equal(layoutStoreFor('registry.example/app:v1'), undefined);
  assert.equal(layoutStoreFor('/some/dir', true)?.dir, '/some/dir');
});

test('manifests by tag and digest; re-tagging replaces; missing is ERR_NOT_FOUND', async () => {
  const s = fresh();
  const a = await image(s, 'a', 'v1');
  const m = await s.getManifest(repo, 'v1');
  assert.equal(m.digest, a.digest);
  assert.equal((await s.getManifest(repo, a.digest)).digest, a.digest);
  const b = await image(s, 'b', 'v1');
  assert.deepEqual(
    index(s).manifests.map((d) => [d.digest, d.annotations?.[REF_NAME]]),
    [[b.digest, 'v1']],
  );
  assert.equal(await s.getManifestIfExists(repo, 'v2'), undefined);
  await assert.rejects(s.getManifest(repo, `sha256:${'0'.repeat(64)}`), { code: 'ERR_NOT_FOUND' });
  // One image, no tag asked for: the layout's image.
  assert.equal((await resolveImage(new LayoutStore(s.dir), '/ignored')).digest, b.digest);
});

test('blobs are checked: size, digest, bound; digests never become paths', async () => {
  const s = fresh();
  const bytes = utf8('hello layout');
  const d = await s.putBlob(repo, bytes);
  assert.deepEqual(await s.getBlob(repo, d), bytes);
  await assert.rejects(s.getBlob(repo, { digest: d.digest, size: d.size + 1 }), { code: 'ERR_VERIFY_ARTIFACT', check: 'oci.digest' });
  await assert.rejects(s.getBlob(repo, d, 4), { code: 'ERR_BODY_TOO_LARGE', check: 'oci.size' });
  writeFileSync(join(s.dir, 'blobs', 'sha256', d.digest.slice(7)), utf8('hellO layout'));
  await assert.rejects(s.getBlob(repo, d), { code: 'ERR_VERIFY_ARTIFACT', check: 'oci.digest' });
  await assert.rejects(s.getBlob(repo, { digest: 'sha256:../../../etc/passwd', size: 1 }), { code: 'ERR_INVALID_INPUT' });
  await assert.rejects(new LayoutStore(join(root, 'nowhere')).getManifest(repo, 'v1'), {
    code: 'ERR_NOT_FOUND',
    message: /not an OCI image layout/,
  });
});

test('referrers: manifests in blobs/ whose subject is the digest, by artifact type; large blobs are not opened', async () => {
  const s = fresh();
  const subject = await image(s, 'subj', 'v1');
  const other = await image(s, 'other', 'v2');
  const refer = async (subj: Descriptor, artifactType: string) => {
    await s.putBlob(repo, EMPTY_JSON);
    const layer = utf8(`{"artifact":"${artifactType}"}`);
    await s.putBlob(repo, layer);
    const m = serializeManifest({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType,
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: digestOf(EMPTY_JSON), size: 2 },
      layers: [{ mediaType: artifactType, digest: digestOf(layer), size: layer.length }],
      subject: subj,
      annotations: { note: artifactType },
    });
    return (await s.putManifest(repo, digestOf(m), m, MEDIA_TYPES.ociManifest)).digest;
  };
  const r1 = await refer(subject, 'application/spdx+json');
  const r2 = await refer(subject, COSIGN.bundleArtifactType);
  await refer(other, 'application/spdx+json');
  // A large blob that mentions "subject" is skipped by size, not parsed.
  await s.putBlob(repo, utf8(`{"subject":${JSON.stringify('x'.repeat(5 << 20))}}`));
  const all = await s.referrers(repo, subject.digest);
  assert.deepEqual(all.descriptors.map((d) => d.digest).sort(), [r1, r2].sort());
  assert.equal(all.descriptors.find((d) => d.digest === r1)!.annotations?.note, 'application/spdx+json');
  const bundles = await s.referrers(repo, subject.digest, COSIGN.bundleArtifactType);
  assert.deepEqual(
    bundles.descriptors.map((d) => d.digest),
    [r2],
  );
  // Untagged, but listed in index.json (garbage collectors keep them).
  assert.ok(index(s).manifests.some((d) => d.digest === r1 && !d.annotations?.[REF_NAME]));
  // With several images and referrers, no default image: the layout names the candidates.
  assert.throws(() => new LayoutStore(s.dir).reference(), { code: 'ERR_INVALID_INPUT', message: /holds 2 images \(v1, v2\)/ });
  // findBundles reads the bundle referrer (its layer is not a bundle: reported, not thrown).
  const found = await findBundles(s, repo, subject.digest);
  assert.equal(found.attachments.length, 1);
  assert.equal(found.attachments[0]!.error?.code, 'ERR_BUNDLE_INVALID');
});

test("cosign save layouts: the image and its signatures by cosign's kind annotations", async () => {
  const s = fresh();
  const img = await image(s, 'saved');
  // What `cosign save` writes: the image and the .sig manifest, annotated by kind, no ref.name.
  const payload = utf8('{"critical":{}}');
  const { config, manifest } = legacySignatureImage(
    [],
    [{ mediaType: COSIGN.simpleSigningMediaType, payload, annotations: { [COSIGN.annotations.signature]: 'AQ==' } }],
  );
  await s.putBlob(repo, payload);
  await s.putBlob(repo, config);
  writeFileSync(join(s.dir, 'blobs', 'sha256', digestOf(manifest).slice(7)), manifest);
  const ix = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      { ...img, annotations: { [COSIGN_KIND]: COSIGN_KINDS.image } },
      {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: digestOf(manifest),
        size: manifest.length,
        annotations: { [COSIGN_KIND]: COSIGN_KINDS.sigs },
      },
    ],
  };
  writeFileSync(join(s.dir, 'index.json'), JSON.stringify(ix));
  const resolved = await resolveImage(new LayoutStore(s.dir), s.dir);
  assert.equal(resolved.digest, img.digest);
  const legacy = await findLegacy(s, repo, img.digest, 'sig');
  assert.equal(legacy.attachments.length, 1);
  assert.deepEqual(legacy.attachments[0]!.payload, payload);
  // A new legacy signature replaces the kind=sigs entry and keeps cosign able to find it.
  await s.putManifest(repo, legacyTag(img.digest, 'sig'), manifest, MEDIA_TYPES.ociManifest);
  const sigs = index(s).manifests.filter((d) => d.annotations?.[COSIGN_KIND] === COSIGN_KINDS.sigs);
  assert.equal(sigs.length, 1);
  assert.equal(sigs[0]!.annotations?.[REF_NAME], legacyTag(img.digest, 'sig'));
});
