// Local OCI image layouts (oci:<dir>[:<tag>|@<digest>] and cosign's --local-image) with real
// peers: layouts built by umoci, the dev instance signing into them, umoci gc run over the result,
// skopeo copying the image out; sign/attest/verify/verify-attestation/tree/download all on a layout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';
import { writeLayout } from './registry-fixture.ts';

const run = promisify(execFile);
const missing = ['umoci', 'skopeo'].find((t) => !(process.env.PATH ?? '').split(':').some((p) => existsSync(join(p, t))));
const skip = missing ? `${missing} is not installed (apt-get install -y ${missing})` : false;
const dev = useDevStack('wx-image-layout-');

interface IndexJson {
  manifests: { digest: string; mediaType: string; artifactType?: string; annotations?: Record<string, string> }[];
}

describe('local OCI layouts: sign, attest, verify, tree and download on oci:<dir> and --local-image', { skip, timeout: 240_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wx-layouts-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh umoci layout with one image per tag (a label makes each digest distinct); returns the digests. */
  async function umociLayout(name: string, tags: string[]): Promise<{ path: string; digests: Record<string, string> }> {
    const path = join(dir, name);
    await run('umoci', ['init', '--layout', path]);
    const digests: Record<string, string> = {};
    for (const tag of tags) {
      await run('umoci', ['new', '--image', `${path}:${tag}`]);
      await run('umoci', ['config', '--image', `${path}:${tag}`, '--config.label', `seed=${name}-${tag}`]);
      const ix = readIndex(path);
      digests[tag] = ix.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
    }
    return { path, digests };
  }
  const readIndex = (path: string) => JSON.parse(readFileSync(join(path, 'index.json'), 'utf8')) as IndexJson;
  const ok = (r: { code: number; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);
  const signing = async (email: string) => [
    '--signing-config',
    dev.stack.signingConfigPath,
    '--identity-token',
    await fetchDevToken(dev.stack.issuer, email),
  ];
  const trust = (email: string) => [
    '--trusted-root',
    dev.stack.trustedRootPath,
    '--certificate-identity',
    email,
    '--certificate-oidc-issuer',
    dev.stack.issuer,
  ];

  test('bundle format: sign oci:<dir>:<tag>, verify by tag, by digest and with --local-image; survives umoci gc', async () => {
    const { path, digests } = await umociLayout('bundle', ['v1']);
    const s = await runCli(['sign', `oci:${path}:v1`, ...(await signing('alice@example.com'))]);
    ok(s, 'sign');
    // The referrer is in index.json (untagged, so gc keeps it) with the bundle's artifact type.
    const ix = readIndex(path);
    const referrer = ix.manifests.find((m) => m.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.ok(referrer, 'referrer listed in index.json');
    assert.equal(referrer.annotations?.['org.opencontainers.image.ref.name'], undefined);
    const m = JSON.parse(readFileSync(join(path, 'blobs', 'sha256', referrer.digest.slice(7)), 'utf8'));
    assert.equal(m.subject.digest, digests.v1);

    for (const ref of [[`oci:${path}:v1`], [`oci:${path}@${digests.v1}`], ['--local-image', path]]) {
      const v = await runCli(['verify', ...ref, ...trust('alice@example.com'), '--json']);
      ok(v, `verify ${ref.join(' ')}`);
      const out = JSON.parse(v.stdout) as { digest: string; verified: { format: string; location: string }[] };
      assert.equal(out.digest, digests.v1);
      assert.deepEqual(
        out.verified.map((x) => [x.format, x.location]),
        [['bundle', referrer.digest]],
      );
    }
    failedWithCode(await runCli(['verify', `oci:${path}:v1`, ...trust('mallory@example.com')]), 'ERR_VERIFY_IDENTITY');

    // umoci's garbage collection keeps what index.json lists: the signature still verifies.
    await run('umoci', ['gc', '--layout', path]);
    ok(await runCli(['verify', '--local-image', path, ...trust('alice@example.com')]), 'verify after umoci gc');
    // skopeo still reads the tagged image out of the layout.
    const copy = join(dir, 'bundle-copy');
    await run('skopeo', ['copy', '--quiet', `oci:${path}:v1`, `oci:${copy}:v1`]);
    assert.equal(readIndex(copy).manifests[0]!.digest, digests.v1);
  });

  test('legacy format and attestations in a layout: tags sha256-<hex>.sig/.att; verify-attestation, tree, download', async () => {
    const { path, digests } = await umociLayout('legacy', ['v1']);
    const image = `oci:${path}:v1`;
    ok(await runCli(['sign', image, '--new-bundle-format=false', ...(await signing('bob@example.com'))]), 'sign legacy');
    const predicate = join(dir, 'predicate.json');
    writeFileSync(predicate, JSON.stringify({ buildType: 'https://example.com/build/v1' }));
    ok(
      await runCli([
        'attest',
        image,
        '--predicate',
        predicate,
        '--type',
        'slsaprovenance1',
        '--new-bundle-format=false',
        ...(await signing('bob@example.com')),
      ]),
      'attest legacy',
    );
    const tags = readIndex(path).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
    const hex = digests.v1!.slice(7);
    assert.deepEqual(tags.sort(), [`sha256-${hex}.att`, `sha256-${hex}.sig`, 'v1']);

    const v = await runCli(['verify', '--local-image', path, ...trust('bob@example.com'), '--json']);
    ok(v, 'verify legacy');
    assert.deepEqual(
      (JSON.parse(v.stdout) as { verified: { format: string; location: string }[] }).verified.map((x) => [x.format, x.location]),
      [['legacy', `sha256-${hex}.sig#0`]],
    );
    ok(await runCli(['verify-attestation', image, '--type', 'slsaprovenance1', ...trust('bob@example.com')]), 'verify-attestation');
    failedWithCode(await runCli(['verify-attestation', image, '--type', 'spdxjson', ...trust('bob@example.com')]), 'ERR_VERIFY_THRESHOLD');

    const t = await runCli(['tree', '--local-image', path, '--json']);
    ok(t, 'tree');
    const tree = JSON.parse(t.stdout) as { digest: string; legacy: { kind: string }[] };
    assert.equal(tree.digest, digests.v1);
    assert.deepEqual(
      tree.legacy.map((l) => l.kind),
      ['signatures', 'attestations'],
    );
    const d = await runCli(['download', 'signature', image]);
    ok(d, 'download signature');
    const sp = JSON.parse(d.stdout.trim()) as { Payload: string };
    assert.equal(JSON.parse(Buffer.from(sp.Payload, 'base64').toString()).critical.image['docker-manifest-digest'], digests.v1);
  });

  test('--recursive on a multi-platform index in a layout signs the index and each platform manifest', async () => {
    const path = join(dir, 'multi');
    writeLayout(path, 'v1', 'layout-multi', ['linux/amd64', 'linux/arm64']);
    const top = readIndex(path).manifests[0]!;
    assert.equal(top.mediaType, 'application/vnd.oci.image.index.v1+json');
    ok(await runCli(['sign', `oci:${path}:v1`, '--recursive', ...(await signing('dave@example.com'))]), 'sign -r');
    const platforms = (JSON.parse(readFileSync(join(path, 'blobs', 'sha256', top.digest.slice(7)), 'utf8')) as IndexJson).manifests;
    assert.equal(platforms.length, 2);
    for (const d of [top.digest, ...platforms.map((p) => p.digest)]) {
      ok(await runCli(['verify', `oci:${path}@${d}`, ...trust('dave@example.com')]), `verify ${d}`);
    }
    // Without a tag, the layout's image is the index (the referrers added beside it do not count).
    const v = await runCli(['verify', '--local-image', path, ...trust('dave@example.com'), '--json']);
    ok(v, 'verify --local-image');
    assert.equal((JSON.parse(v.stdout) as { digest: string }).digest, top.digest);
  });

  test('a tampered blob, an ambiguous layout and a directory that is no layout are clear errors', async () => {
    const { path, digests } = await umociLayout('tamper', ['a', 'b']);
    ok(await runCli(['sign', `oci:${path}:a`, ...(await signing('carol@example.com'))]), 'sign');
    // Two images and no tag: the layout must say which.
    failedWithCode(
      await runCli(['verify', '--local-image', path, ...trust('carol@example.com')]),
      'ERR_INVALID_INPUT',
      /holds 2 images \(a, b\): name one as oci:/,
    );
    // b is not signed; a's signature does not cover it.
    failedWithCode(await runCli(['verify', `oci:${path}:b`, ...trust('carol@example.com')]), 'ERR_VERIFY_THRESHOLD');
    // Flip a byte of the bundle blob: the digest check catches it before any verification.
    const referrer = readIndex(path).manifests.find((m) => m.artifactType)!;
    const m = JSON.parse(readFileSync(join(path, 'blobs', 'sha256', referrer.digest.slice(7)), 'utf8'));
    const blob = join(path, 'blobs', 'sha256', m.layers[0].digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[bytes.length - 3] ^= 1;
    rmSync(blob);
    writeFileSync(blob, bytes);
    const r = await runCli(['verify', `oci:${path}@${digests.a}`, ...trust('carol@example.com')]);
    failedWithCode(r, 'ERR_VERIFY_ARTIFACT', /digest/);
    failedWithCode(
      await runCli(['verify', '--local-image', dir, ...trust('carol@example.com')]),
      'ERR_NOT_FOUND',
      /is not an OCI image layout/,
    );
    failedWithCode(await runCli(['verify', `oci:${path}:nope`, ...trust('carol@example.com')]), 'ERR_NOT_FOUND', /no tag nope/);
  });
});
