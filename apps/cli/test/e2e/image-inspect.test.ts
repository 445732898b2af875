// waxseal tree and download against the real docker-registry and the dev instance: what sign and
// attest attached in both formats, plus an SBOM referrer pushed by hand, listed and printed in
// cosign's shapes; legacy signatures printed by download check out with node:crypto on their own.
import assert from 'node:assert/strict';
import { X509Certificate, verify as cryptoVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';
import {
  pushBlob,
  pushImage,
  pushManifest,
  registryToolsMissing,
  sha256Digest,
  startRegistry,
  getManifestBytes,
  type TestRegistry,
} from './registry-fixture.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-image-inspect-');

interface TreeJson {
  digest: string;
  referrersVia: string;
  referrers: { digest: string; kind: string; artifactType?: string; predicateType?: string; layers: { digest: string }[] }[];
  legacy: { tag: string; kind: string; layers: { digest: string; predicateType?: string }[] }[];
}

describe('waxseal tree and download', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  const ok = (r: { code: number; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);
  const signing = async (email: string) => [
    '--signing-config',
    dev.stack.signingConfigPath,
    '--identity-token',
    await fetchDevToken(dev.stack.issuer, email),
  ];
  const predicateFile = () => {
    const p = join(dev.dir, 'inspect-predicate.json');
    writeFileSync(p, JSON.stringify({ buildType: 'https://example.com/build/v1' }));
    return p;
  };

  test('tree lists bundle referrers by predicate type, an SBOM referrer and the legacy tags', async () => {
    const digest = await pushImage(reg, 'inspect/app:v1', 'inspect-1');
    const image = `${reg.host}/inspect/app@${digest}`;
    const predicate = predicateFile();
    ok(await runCli(['sign', image, ...(await signing('alice@example.com'))]), 'sign (bundle)');
    ok(await runCli(['sign', image, '--new-bundle-format=false', ...(await signing('alice@example.com'))]), 'sign (legacy)');
    ok(
      await runCli(['attest', image, '--predicate', predicate, '--type', 'slsaprovenance1', ...(await signing('alice@example.com'))]),
      'attest',
    );
    ok(
      await runCli([
        'attest',
        image,
        '--predicate',
        predicate,
        '--type',
        'https://example.com/custom/v1',
        '--new-bundle-format=false',
        ...(await signing('alice@example.com')),
      ]),
      'attest (legacy)',
    );
    // An SBOM as oras attaches one: artifactType application/spdx+json, listed in the tag schema index.
    const sbom = await pushBlob(reg, 'inspect/app', JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'app' }));
    const empty = await pushBlob(reg, 'inspect/app', '{}');
    const subjectBytes = await getManifestBytes(reg, 'inspect/app', digest);
    const sbomManifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
      layers: [{ mediaType: 'application/spdx+json', digest: sbom.digest, size: sbom.size }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: subjectBytes.length },
    });
    const sbomDigest = await pushManifest(
      reg,
      'inspect/app',
      sha256Digest(sbomManifest),
      sbomManifest,
      'application/vnd.oci.image.manifest.v1+json',
    );
    const tagIndex = JSON.parse((await getManifestBytes(reg, 'inspect/app', digest.replace(':', '-'))).toString()) as {
      manifests: unknown[];
    };
    tagIndex.manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sbomDigest,
      size: sbomManifest.length,
      artifactType: 'application/spdx+json',
    });
    await pushManifest(reg, 'inspect/app', digest.replace(':', '-'), JSON.stringify(tagIndex), 'application/vnd.oci.image.index.v1+json');

    const r = await runCli(['tree', image, '--json']);
    ok(r, 'tree --json');
    const t = JSON.parse(r.stdout) as TreeJson;
    assert.equal(t.digest, digest);
    assert.equal(t.referrersVia, 'tag');
    const byKind = Object.fromEntries(t.referrers.map((x) => [x.kind, x]));
    assert.deepEqual(t.referrers.map((x) => x.kind).sort(), ['attestation', 'sbom', 'signature']);
    assert.equal(byKind.signature!.predicateType, 'https://sigstore.dev/cosign/sign/v1');
    assert.equal(byKind.attestation!.predicateType, 'https://slsa.dev/provenance/v1');
    assert.equal(byKind.sbom!.digest, sbomDigest);
    assert.deepEqual(
      byKind.sbom!.layers.map((l) => l.digest),
      [sbom.digest],
    );
    assert.deepEqual(
      t.legacy.map((l) => [l.tag, l.kind, l.layers.length]),
      [
        [`${digest.replace(':', '-')}.sig`, 'signatures', 1],
        [`${digest.replace(':', '-')}.att`, 'attestations', 1],
      ],
    );
    assert.equal(t.legacy[1]!.layers[0]!.predicateType, 'https://example.com/custom/v1');

    const text = await runCli(['tree', image]);
    ok(text, 'tree');
    assert.match(text.stdout, new RegExp(`Supply Chain Security Related artifacts for an image: ${reg.host}/inspect/app@${digest}`));
    assert.match(text.stdout, /🔐 Signatures for an image tag: .*\.sig\n {3}└── 🍒 sha256:/);
    assert.match(text.stdout, /🔗 https:\/\/slsa\.dev\/provenance\/v1 attestation artifacts via OCI referrer/);
    assert.match(text.stdout, /🔗 application\/spdx\+json sbom artifacts via OCI referrer/);

    // download signature: bundles first (here the sign bundle only, not the attestation).
    const ds = await runCli(['download', 'signature', image]);
    ok(ds, 'download signature');
    const sigLines = ds.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(sigLines.length, 1);
    assert.equal(sigLines[0].mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    const stmt = JSON.parse(Buffer.from(sigLines[0].dsseEnvelope.payload, 'base64').toString());
    assert.equal(stmt.predicateType, 'https://sigstore.dev/cosign/sign/v1');
    assert.equal(`sha256:${stmt.subject[0].digest.sha256}`, digest);

    // download attestation: the bundle, then the legacy envelope; --predicate-type filters.
    const da = await runCli(['download', 'attestation', image]);
    ok(da, 'download attestation');
    const attLines = da.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(attLines.length, 2);
    assert.ok(attLines[0].dsseEnvelope, 'a bundle first');
    assert.deepEqual(Object.keys(attLines[1]), ['payloadType', 'payload', 'signatures']);
    assert.equal(attLines[1].payloadType, 'application/vnd.in-toto+json');
    const only = await runCli(['download', 'attestation', image, '--predicate-type', 'https://example.com/custom/v1']);
    ok(only, 'download attestation --predicate-type');
    const onlyLines = only.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(onlyLines.length, 1);
    assert.equal(JSON.parse(Buffer.from(onlyLines[0].payload, 'base64').toString()).predicateType, 'https://example.com/custom/v1');
    failedWithCode(
      await runCli(['download', 'attestation', image, '--predicate-type', 'spdxjson']),
      'ERR_NOT_FOUND',
      /no attestations with predicate type https:\/\/spdx\.dev\/Document attached/,
    );
  });

  test("download signature prints legacy signatures as cosign's SignedPayload, and they check out", async () => {
    const digest = await pushImage(reg, 'inspect/legacy:v1', 'inspect-legacy');
    const image = `${reg.host}/inspect/legacy:v1`;
    ok(await runCli(['sign', image, '--new-bundle-format=false', '-a', 'team=red', ...(await signing('bob@example.com'))]), 'sign');
    const r = await runCli(['download', 'signature', image]);
    ok(r, 'download signature');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const sp = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(sp), ['Base64Signature', 'Payload', 'Cert', 'Chain', 'Bundle', 'RFC3161Timestamp']);
    const payload = Buffer.from(sp.Payload, 'base64');
    const p = JSON.parse(payload.toString());
    assert.equal(p.critical.image['docker-manifest-digest'], digest);
    assert.deepEqual(p.optional, { team: 'red' });
    // The signature is over the payload, by the certificate's key (checked here without waxseal).
    const cert = new X509Certificate(Buffer.from(sp.Cert.Raw, 'base64'));
    assert.match(cert.subjectAltName ?? '', /bob@example\.com/);
    assert.equal(cryptoVerify('sha256', payload, cert.publicKey, Buffer.from(sp.Base64Signature, 'base64')), true);
    assert.equal(cryptoVerify('sha256', Buffer.from(`${payload}x`), cert.publicKey, Buffer.from(sp.Base64Signature, 'base64')), false);
    // A v0.3 bundle carries the leaf only, so waxseal writes no chain annotation: Chain is null, as cosign prints it then.
    assert.equal(sp.Chain, null);
    assert.equal(typeof sp.RFC3161Timestamp.SignedRFC3161Timestamp, 'string');
    assert.equal(typeof sp.Bundle.SignedEntryTimestamp, 'string');
    assert.equal(typeof sp.Bundle.Payload.logIndex, 'number');
  });

  test('nothing attached: tree says so, download signature fails with ERR_NOT_FOUND; bad usage is exit 2', async () => {
    const digest = await pushImage(reg, 'inspect/bare:v1', 'inspect-bare');
    const image = `${reg.host}/inspect/bare@${digest}`;
    const t = await runCli(['tree', image]);
    ok(t, 'tree');
    assert.match(t.stdout, /No Supply Chain Security Related Artifacts found/);
    const j = JSON.parse((await runCli(['tree', image, '--json'])).stdout) as TreeJson;
    assert.deepEqual([j.referrers, j.legacy, j.referrersVia], [[], [], 'none']);
    failedWithCode(await runCli(['download', 'signature', image]), 'ERR_NOT_FOUND', /no signatures attached/);
    const none = await runCli(['download', 'attestation', image]);
    assert.deepEqual([none.code, none.stdout], [0, '']);
    const bad = await runCli(['download', 'sbom', image]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /expected signature or attestation/);
    failedWithCode(await runCli(['tree', `${reg.host}/inspect/missing:v1`]), 'ERR_NOT_FOUND');
  });
});
