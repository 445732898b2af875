// Container-image interop with real peers only: docker-registry 2.8 (no referrers API, basic
// auth), the dev instance, sigstore-js and @sigstore/oci (what GitHub's actions/attest uses to push
// a bundle as an OCI 1.1 referrer), and a real cosign attestation bundle from the vectors. Each way:
// their bundle in the registry, our verify-attestation; our attest, their verifier.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { attachArtifactToImage } from '@sigstore/oci';
import { DSSEBundleBuilder, FulcioSigner, RekorWitness, TSAWitness } from '@sigstore/sign';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { serializeTrustedRoot } from '../../../../packages/bundle/src/index.ts';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';
import {
  VECTORS,
  dockerConfigFor,
  getBlobBytes,
  getManifestBytes,
  plainReferrers,
  pushBlob,
  pushImage,
  pushManifest,
  regFetch,
  registryToolsMissing,
  sha256Digest,
  startRegistry,
  type TestRegistry,
} from './registry-fixture.ts';

const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const skip = registryToolsMissing();
const dev = useDevStack('wx-image-interop-');

describe('image interop: @sigstore/oci, sigstore-js and cosign bundles in a registry', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  let env: Record<string, string>;
  before(async () => {
    // With credentials, as GHCR and every real registry: @sigstore/oci signs in before pushing.
    reg = await startRegistry({ auth: true });
    env = dockerConfigFor(reg, reg.dir);
  });
  after(() => reg?.close());

  const trust = (email: string) => [
    '--trusted-root',
    dev.stack.trustedRootPath,
    '--certificate-identity',
    email,
    '--certificate-oidc-issuer',
    dev.stack.issuer,
  ];
  const ok = (r: { code: number; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);

  test('a sigstore-js DSSE bundle attached by @sigstore/oci (actions/attest) verifies with verify-attestation', async () => {
    const digest = await pushImage(reg, 'interop/gha:v1', 'gha-1');
    const token = await fetchDevToken(dev.stack.issuer, 'ci@example.com');
    const signer = new FulcioSigner({ fulcioBaseURL: dev.stack.caUrl, identityProvider: { getToken: async () => token } });
    const builder = new DSSEBundleBuilder({
      signer,
      witnesses: [new RekorWitness({ rekorBaseURL: dev.stack.url }), new TSAWitness({ tsaBaseURL: dev.stack.url })],
    });
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `${reg.host}/interop/gha`, digest: { sha256: digest.slice('sha256:'.length) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1' } },
    };
    const bundle = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' });
    assert.equal(bundle.mediaType, BUNDLE_V03);
    // Exactly the call actions/attest makes (push-to-registry: true).
    const pushed = await attachArtifactToImage({
      credentials: { username: reg.user!, password: reg.password! },
      imageName: `${reg.host}/interop/gha`,
      imageDigest: digest,
      artifact: Buffer.from(JSON.stringify(bundleToJSON(bundle))),
      mediaType: bundle.mediaType,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': statement.predicateType },
    });
    // docker-registry 2.8 has no referrers API: @sigstore/oci fell back to the referrers tag schema.
    assert.equal((await plainReferrers(reg, 'interop/gha', digest)).map((d) => d.digest).join(), pushed.digest);
    assert.equal((await regFetch(reg, `/v2/interop/gha/referrers/${digest}`)).status, 404);

    const v = await runCli(
      ['verify-attestation', `${reg.host}/interop/gha:v1`, '--type', 'slsaprovenance1', ...trust('ci@example.com'), '--json'],
      {
        env,
      },
    );
    ok(v, 'verify-attestation');
    const out = JSON.parse(v.stdout) as { digest: string; verified: { format: string; location: string; predicateType: string }[] };
    assert.equal(out.digest, digest);
    assert.deepEqual(
      out.verified.map((x) => [x.format, x.location, x.predicateType]),
      [['bundle', pushed.digest, 'https://slsa.dev/provenance/v1']],
    );
    // The identity and the predicate type are still enforced.
    failedWithCode(
      await runCli(['verify-attestation', `${reg.host}/interop/gha:v1`, '--type', 'slsaprovenance1', ...trust('mallory@example.com')], {
        env,
      }),
      'ERR_VERIFY_IDENTITY',
    );
    failedWithCode(
      await runCli(['verify-attestation', `${reg.host}/interop/gha:v1`, '--type', 'spdxjson', ...trust('ci@example.com')], { env }),
      'ERR_VERIFY_THRESHOLD',
    );
    // The same bundle attached to another image names the wrong subject.
    const other = await pushImage(reg, 'interop/gha:v2', 'gha-2');
    await attachArtifactToImage({
      credentials: { username: reg.user!, password: reg.password! },
      imageName: `${reg.host}/interop/gha`,
      imageDigest: other,
      artifact: Buffer.from(JSON.stringify(bundleToJSON(bundle))),
      mediaType: bundle.mediaType,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': statement.predicateType },
    });
    failedWithCode(
      await runCli(['verify-attestation', `${reg.host}/interop/gha:v2`, '--type', 'slsaprovenance1', ...trust('ci@example.com')], { env }),
      'ERR_VERIFY_ARTIFACT',
    );
  });

  test('a bundle `waxseal attest` stored, read back with plain HTTP, is accepted by @sigstore/verify', async () => {
    const digest = await pushImage(reg, 'interop/ours:v1', 'ours-1');
    const predicate = join(dev.dir, 'interop-predicate.json');
    writeFileSync(predicate, JSON.stringify({ buildType: 'https://example.com/build/v1' }));
    ok(
      await runCli(
        [
          'attest',
          `${reg.host}/interop/ours@${digest}`,
          '--predicate',
          predicate,
          '--type',
          'slsaprovenance1',
          '--signing-config',
          dev.stack.signingConfigPath,
          '--identity-token',
          await fetchDevToken(dev.stack.issuer, 'dana@example.com'),
        ],
        { env },
      ),
      'attest',
    );
    const refs = (await plainReferrers(reg, 'interop/ours', digest)).filter((d) => d.artifactType === BUNDLE_V03);
    assert.equal(refs.length, 1);
    const manifest = JSON.parse((await getManifestBytes(reg, 'interop/ours', refs[0]!.digest)).toString()) as {
      subject: { digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(manifest.subject.digest, digest);
    const layer = manifest.layers.find((l) => l.mediaType === BUNDLE_V03)!;
    const bundle = bundleFromJSON(JSON.parse((await getBlobBytes(reg, 'interop/ours', layer.digest)).toString()));

    const root = TrustedRoot.fromJSON(serializeTrustedRoot(dev.stack.trustedRoot));
    const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 1 });
    const policy = { subjectAlternativeName: 'dana@example.com', extensions: { issuer: dev.stack.issuer } };
    const signer = verifier.verify(toSignedEntity(bundle), policy);
    assert.equal(signer.identity?.subjectAlternativeName, 'dana@example.com');
    // sigstore-js checks the envelope; the subject is the image's digest.
    assert.equal(bundle.content.$case, 'dsseEnvelope');
    if (bundle.content.$case !== 'dsseEnvelope') return;
    const statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString()) as {
      subject: { digest: { sha256: string } }[];
      predicateType: string;
    };
    assert.equal(`sha256:${statement.subject[0]!.digest.sha256}`, digest);
    assert.equal(statement.predicateType, 'https://slsa.dev/provenance/v1');
    assert.throws(() => verifier.verify(toSignedEntity(bundle), { ...policy, subjectAlternativeName: 'eve@example.com' }), {
      name: 'PolicyError',
    });
  });

  const vector = join(VECTORS, 'cosign-v0.3-dsse-rekor-v1-oci-attestation');
  test("cosign's OCI attestation bundle (the vector), stored as cosign stores it, verifies with verify-attestation", {
    skip: existsSync(join(vector, 'case.json')) ? false : `the cosign vector is not in ${vector} (set WAXSEAL_VECTORS)`,
  }, async () => {
    const c = JSON.parse(readFileSync(join(vector, 'case.json'), 'utf8')) as {
      artifact: { digest: { hex: string } };
      trustedRoot: string;
      policy: { certificateIdentity: string; certificateOidcIssuer: string };
      bundleKind: { predicateType: string };
    };
    const bundleBytes = readFileSync(join(vector, 'bundle.sigstore.json'));
    const subject = `sha256:${c.artifact.digest.hex}`;
    // The subject is go-containerregistry's empty.Image (cosign's TestGetBundles_Valid pushes it):
    // a Docker schema 2 manifest with no layers over this config. Rebuilt here, it must hash to the
    // vector's subject digest, so the real registry serves the very image the bundle names.
    const config = '{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}';
    const cfg = await pushBlob(reg, 'cosign/repo', config);
    const image = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":${cfg.size},"digest":"${cfg.digest}"},"layers":[]}`;
    assert.equal(sha256Digest(image), subject, 'the empty image hashes to the vector subject');
    await pushManifest(reg, 'cosign/repo', 'tag', image, 'application/vnd.docker.distribution.manifest.v2+json');

    // What cosign's WriteAttestationNewBundleFormat writes (pkg/oci/remote/write.go WriteReferrer):
    // empty config, the bundle as the one layer, subject = the image; then, on a registry without
    // the referrers API, go-containerregistry's fallback index at tag sha256-<hex>.
    const empty = await pushBlob(reg, 'cosign/repo', '{}');
    const layer = await pushBlob(reg, 'cosign/repo', bundleBytes);
    const annotations = {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': c.bundleKind.predicateType,
      'org.opencontainers.image.created': '2025-02-28T19:18:11Z',
    };
    const referrer = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: empty.size, digest: empty.digest, artifactType: BUNDLE_V03 },
      layers: [{ mediaType: BUNDLE_V03, size: layer.size, digest: layer.digest }],
      annotations,
      subject: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: image.length, digest: subject },
      artifactType: BUNDLE_V03,
    });
    const refDigest = await pushManifest(
      reg,
      'cosign/repo',
      sha256Digest(referrer),
      referrer,
      'application/vnd.oci.image.manifest.v1+json',
    );
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: referrer.length,
          digest: refDigest,
          annotations,
          artifactType: BUNDLE_V03,
        },
      ],
    });
    await pushManifest(reg, 'cosign/repo', subject.replace(':', '-'), index, 'application/vnd.oci.image.index.v1+json');

    const args = (identity: string) => [
      'verify-attestation',
      `${reg.host}/cosign/repo:tag`,
      '--type',
      c.bundleKind.predicateType,
      '--trusted-root',
      join(vector, c.trustedRoot),
      '--certificate-identity',
      identity,
      '--certificate-oidc-issuer',
      c.policy.certificateOidcIssuer,
      '--json',
    ];
    const v = await runCli(args(c.policy.certificateIdentity), { env });
    ok(v, 'verify-attestation of the cosign vector');
    const out = JSON.parse(v.stdout) as { digest: string; verified: { location: string; signer: { identity: string } }[] };
    assert.equal(out.digest, subject);
    assert.deepEqual(
      out.verified.map((x) => [x.location, x.signer.identity]),
      [[refDigest, c.policy.certificateIdentity]],
    );
    failedWithCode(await runCli(args('someone@example.com'), { env }), 'ERR_VERIFY_IDENTITY');
  });
});
