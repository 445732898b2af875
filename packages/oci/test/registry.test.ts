// The registry client against a real registry (docker-registry 2.8, started here), with images
// pushed by skopeo from OCI layouts: manifests, indexes, blobs, uploads, tags, referrers, auth.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rejectsWithCode } from '@waxseal/testkit';
import {
  COSIGN,
  EMPTY_JSON,
  MEDIA_TYPES,
  RegistryClient,
  defaultCredentials,
  digestOf,
  resolveChildren,
  resolveImage,
  serializeManifest,
} from '../src/index.ts';
import { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from './registry-fixture.ts';

const skip = registryToolsMissing();
const anonymous = () => undefined;

describe('registry client against docker-registry', { skip, timeout: 120_000 }, () => {
  let reg: TestRegistry;
  let digest: string;
  let indexDigest: string;
  const requests: string[] = [];
  let client: RegistryClient;
  before(async () => {
    reg = await startRegistry();
    digest = await pushImage(reg, 'app/one:v1', 'one');
    indexDigest = await pushImage(reg, 'app/multi:v1', 'multi', ['linux/amd64', 'linux/arm64']);
    client = new RegistryClient({ credentials: anonymous, onRequest: (m, u) => requests.push(`${m} ${u}`) });
  });
  after(() => reg?.close());
  const repo = (repository: string) => ({ registry: reg.host, repository });

  test('resolves a tag to the digest skopeo pushed, and fetches by digest (checked)', async () => {
    const img = await resolveImage(client, `${reg.host}/app/one:v1`);
    assert.equal(img.digest, digest);
    assert.equal(img.manifest.parsed.kind, 'manifest');
    const byDigest = await client.getManifest(repo('app/one'), digest);
    assert.equal(digestOf(byDigest.bytes), digest);
    const head = await client.headManifest(repo('app/one'), 'v1');
    assert.equal(head?.digest, digest);
    assert.equal(await client.headManifest(repo('app/one'), 'nope'), undefined);
    await rejectsWithCode(client.getManifest(repo('app/one'), 'nope'), 'ERR_NOT_FOUND');
  });

  test('reads a blob by descriptor, checked against its digest', async () => {
    const img = await resolveImage(client, `${reg.host}/app/one@${digest}`);
    assert.equal(img.manifest.parsed.kind, 'manifest');
    if (img.manifest.parsed.kind !== 'manifest') return;
    const config = await client.getBlob(img.repo, img.manifest.parsed.manifest.config);
    assert.equal(JSON.parse(Buffer.from(config).toString()).config.Labels.seed, 'one');
    await rejectsWithCode(client.getBlob(img.repo, img.manifest.parsed.manifest.config, 4), 'ERR_BODY_TOO_LARGE');
  });

  test('a multi-platform index resolves to each platform manifest', async () => {
    const img = await resolveImage(client, `${reg.host}/app/multi:v1`);
    assert.equal(img.digest, indexDigest);
    assert.equal(img.manifest.parsed.kind, 'index');
    const children = await resolveChildren(client, img);
    assert.equal(children.length, 2);
    assert.deepEqual(
      children.map((c) => c.manifest.parsed.kind),
      ['manifest', 'manifest'],
    );
    assert.notEqual(children[0]!.digest, children[1]!.digest);
  });

  test('uploads blobs monolithically, in chunks, and by cross-repository mount', async () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    const chunky = new RegistryClient({ credentials: anonymous, chunkBytes: 100_000 });
    const up1 = await chunky.putBlob(repo('up/a'), big);
    assert.equal(up1.how, 'chunked');
    assert.deepEqual(await chunky.getBlob(repo('up/a'), up1), big);
    const small = new TextEncoder().encode('small blob');
    const up2 = await client.putBlob(repo('up/a'), small);
    assert.equal(up2.how, 'monolithic');
    assert.equal((await client.putBlob(repo('up/a'), small)).how, 'exists');
    const up3 = await client.putBlob(repo('up/b'), big, { mountFrom: 'up/a' });
    assert.equal(up3.how, 'mounted');
    assert.deepEqual(await client.getBlob(repo('up/b'), up1), big);
  });

  test('lists tags', async () => {
    assert.deepEqual(await client.listTags(repo('app/one')), ['v1']);
  });

  test('referrers: the registry has no API (404), so the tag schema is written and read back, filtered by artifactType', async () => {
    const subject = { mediaType: MEDIA_TYPES.ociManifest, digest, size: 0 };
    const r0 = await client.referrers(repo('app/one'), digest);
    assert.equal(r0.via, 'none');
    await client.putBlob(repo('app/one'), EMPTY_JSON);
    const layer = new TextEncoder().encode('{"not":"a bundle"}');
    await client.putBlob(repo('app/one'), layer);
    const referrer = (artifactType: string) =>
      serializeManifest({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        artifactType,
        config: { mediaType: MEDIA_TYPES.ociEmpty, digest: digestOf(EMPTY_JSON), size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: digestOf(layer), size: layer.length }],
        subject,
      });
    for (const type of [COSIGN.bundleArtifactType, 'application/spdx+json']) {
      const bytes = referrer(type);
      const put = await client.putManifest(repo('app/one'), digestOf(bytes), bytes, MEDIA_TYPES.ociManifest);
      assert.equal(put.subjectIndexed, false, 'distribution 2.8 does not process subject');
      await client.addToReferrersTag(repo('app/one'), digest, {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: put.digest,
        size: bytes.length,
        artifactType: type,
      });
    }
    const all = await client.referrers(repo('app/one'), digest);
    assert.equal(all.via, 'tag');
    assert.equal(all.descriptors.length, 2);
    const bundles = await client.referrers(repo('app/one'), digest, COSIGN.bundleArtifactType);
    assert.deepEqual(
      bundles.descriptors.map((d) => d.artifactType),
      [COSIGN.bundleArtifactType],
    );
  });
});

describe('registry with htpasswd basic auth', { skip, timeout: 120_000 }, () => {
  let reg: TestRegistry;
  let digest: string;
  let dir: string;
  before(async () => {
    reg = await startRegistry({ auth: true });
    digest = await pushImage(reg, 'private/app:v1', 'private');
    dir = mkdtempSync(join(reg.dir, 'creds-'));
  });
  after(() => reg?.close());

  test('anonymous access is refused with a clear error', async () => {
    const client = new RegistryClient({ credentials: anonymous });
    await rejectsWithCode(resolveImage(client, `${reg.host}/private/app:v1`), 'ERR_REGISTRY_AUTH', /requires credentials/);
  });

  test('credentials from REGISTRY_AUTH_FILE (containers auth.json)', async () => {
    const authFile = join(dir, 'auth.json');
    writeFileSync(
      authFile,
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }),
    );
    const client = new RegistryClient({ credentials: defaultCredentials({ HOME: dir, REGISTRY_AUTH_FILE: authFile }) });
    assert.equal((await resolveImage(client, `${reg.host}/private/app:v1`)).digest, digest);
    const up = await client.putBlob({ registry: reg.host, repository: 'private/app' }, new TextEncoder().encode('pushed with basic auth'));
    assert.equal(up.how, 'monolithic');
  });

  test('credentials from ~/.docker/config.json credHelpers (docker-credential-<name>)', async () => {
    const bin = join(dir, 'bin');
    process.getBuiltinModule('node:fs').mkdirSync(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-wxtest');
    writeFileSync(
      helper,
      `#!/bin/sh\nread server\nif [ "$server" = "${reg.host}" ]; then echo '{"ServerURL":"${reg.host}","Username":"${reg.user}","Secret":"${reg.password}"}'; else echo "credentials not found in native keychain"; exit 1; fi\n`,
    );
    chmodSync(helper, 0o755);
    const home = join(dir, 'home');
    process.getBuiltinModule('node:fs').mkdirSync(join(home, '.docker'), { recursive: true });
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'wxtest' } }));
    const env = { HOME: home, PATH: `${bin}:${process.env.PATH}` };
    const client = new RegistryClient({ credentials: defaultCredentials(env) });
    assert.equal((await resolveImage(client, `${reg.host}/private/app:v1`)).digest, digest);
  });

  test('wrong credentials are refused', async () => {
    const client = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'wrong' }) });
    await rejectsWithCode(resolveImage(client, `${reg.host}/private/app:v1`), 'ERR_REGISTRY_AUTH', /HTTP 401/);
  });
});
