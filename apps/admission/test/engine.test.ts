// The engine end to end with real peers: docker-registry, skopeo-pushed images, the dev instance,
// `waxseal sign` (keyless, TSA only) and the seed policy printed by `waxseal policy trustroot`,
// loaded verbatim. Admits the signed image; denies an unsigned one, one signed by another
// identity, and a tag moved to another digest; caches by digest and policy; answers in time when
// the registry hangs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { generateSigner } from '../../../packages/keys/src/memory.ts';
import { loadPolicyStore } from '../../../packages/policy/src/index.ts';
import { TufRepository } from '../../../packages/trust/src/tuf/index.ts';
import { PolicyEngine } from '../src/engine.ts';
import { tufTrustRootLoader } from '../src/engine-tuf.ts';
import {
  POLICY_NAME,
  TRUST_ROOT_NAME,
  pushImage,
  registryToolsMissing,
  seedPolicy,
  signImage,
  startRegistry,
  useDevStack,
  type TestRegistry,
} from './fixture.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-engine-');

describe('PolicyEngine: the seed policy against a real registry and the dev instance', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  let seed: string;
  let requests = 0;
  let engine: PolicyEngine;
  before(async () => {
    reg = await startRegistry();
    seed = await seedPolicy(dev, `${reg.host}/**`, 'alice@example.com');
    engine = new PolicyEngine(loadPolicyStore([{ name: 'seed.yaml', text: seed }]), {
      registry: { credentials: () => undefined, onRequest: () => void requests++ },
    });
  });
  after(() => reg?.close());
  const check = (image: string, signal = AbortSignal.timeout(20_000)) =>
    engine.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, signal);

  test('the printed policy has the seed shape', () => {
    const [tr, cip] = seed.split(/^---$/m).map((d) => parse(d));
    assert.equal(tr.apiVersion, 'policy.sigstore.dev/v1alpha1');
    assert.equal(tr.kind, 'TrustRoot');
    assert.equal(tr.metadata.name, TRUST_ROOT_NAME);
    const keys = tr.spec.sigstoreKeys;
    assert.deepEqual(Object.keys(keys).sort(), ['certificateAuthorities', 'timestampAuthorities']);
    for (const a of [...keys.certificateAuthorities, ...keys.timestampAuthorities]) {
      assert.ok(a.subject.organization && a.subject.commonName && a.uri);
      assert.match(Buffer.from(a.certChain, 'base64').toString(), /^-----BEGIN CERTIFICATE-----\n/);
    }
    assert.equal(cip.kind, 'ClusterImagePolicy');
    assert.equal(cip.metadata.name, POLICY_NAME);
    assert.deepEqual(cip.spec.authorities, [
      {
        keyless: {
          trustRootRef: TRUST_ROOT_NAME,
          url: keys.certificateAuthorities[0].uri,
          identities: [{ issuer: dev.stack.issuer, subject: 'alice@example.com' }],
          insecureIgnoreSCT: true,
        },
        rfc3161timestamp: { trustRootRef: TRUST_ROOT_NAME },
      },
    ]);
  });

  test('admits what alice signed (bundle and legacy formats), by tag and by digest', async () => {
    const digest = await pushImage(reg, 'acme/app:v1', 'engine-app-1');
    await signImage(dev, `${reg.host}/acme/app:v1`, 'alice@example.com');
    const byTag = await check(`${reg.host}/acme/app:v1`);
    assert.deepEqual(byTag.errors, []);
    assert.equal(byTag.allowed, true);
    assert.equal(byTag.digest, digest);
    assert.deepEqual(byTag.policies, [`ClusterImagePolicy ${POLICY_NAME}`]);
    assert.equal((await check(`${reg.host}/acme/app@${digest}`)).allowed, true);
    const legacy = await pushImage(reg, 'acme/legacy:v1', 'engine-legacy-1');
    await signImage(dev, `${reg.host}/acme/legacy@${legacy}`, 'alice@example.com', '--new-bundle-format=false');
    const l = await check(`${reg.host}/acme/legacy:v1`);
    assert.deepEqual(l.errors, []);
    assert.equal(l.allowed, true);
  });

  test('denies an unsigned image, one signed by bob, and a tag moved to another digest', async () => {
    const unsignedDigest = await pushImage(reg, 'acme/unsigned:v1', 'engine-unsigned');
    const noSignatures = `failed policy: ClusterImagePolicy ${POLICY_NAME}: authority authority-0: signature keyless validation failed: no signatures found for ${reg.host}/acme/unsigned:v1@${unsignedDigest}`;
    // Pinned as the mutating webhook pins it (tag kept, digest appended): the digest is named once.
    // (First: the decision is cached by digest, so the tag's check below reuses it.)
    const pinned = await check(`${reg.host}/acme/unsigned:v1@${unsignedDigest}`);
    assert.equal(pinned.allowed, false);
    assert.deepEqual(pinned.errors, [noSignatures]);
    const unsigned = await check(`${reg.host}/acme/unsigned:v1`);
    assert.equal(unsigned.allowed, false);
    assert.deepEqual(unsigned.errors, [noSignatures]);

    await pushImage(reg, 'acme/bob:v1', 'engine-bob');
    await signImage(dev, `${reg.host}/acme/bob:v1`, 'bob@example.com');
    const bob = await check(`${reg.host}/acme/bob:v1`);
    assert.equal(bob.allowed, false);
    assert.match(bob.errors.join('\n'), /authority authority-0: .*bob@example\.com/);

    const signed = await pushImage(reg, 'acme/moved:v1', 'engine-moved-1');
    await signImage(dev, `${reg.host}/acme/moved:v1`, 'alice@example.com');
    assert.equal((await check(`${reg.host}/acme/moved:v1`)).allowed, true);
    const moved = await pushImage(reg, 'acme/moved:v1', 'engine-moved-2');
    assert.notEqual(moved, signed);
    const after = await check(`${reg.host}/acme/moved:v1`);
    assert.equal(after.allowed, false);
    assert.equal(after.digest, moved);
    assert.match(after.errors.join('\n'), /no signatures found/);
    // The signed digest itself is still admitted.
    assert.equal((await check(`${reg.host}/acme/moved@${signed}`)).allowed, true);
  });

  test('a cold check reads each thing once, concurrently; a registry without the referrers API is read through the tag schema', async () => {
    const digest = await pushImage(reg, 'acme/reads:v1', 'engine-reads');
    await signImage(dev, `${reg.host}/acme/reads:v1`, 'alice@example.com');
    // Two authorities whose reads overlap: bundles only, and both formats (the same referrers).
    const doc = parse(seed.split(/^---$/m)[1]!);
    const [authority] = doc.spec.authorities;
    doc.spec.authorities = [
      { ...authority, name: 'bundle-only', signatureFormat: 'bundle' },
      { ...authority, name: 'any-format' },
    ];
    const text = `${seed.split(/^---$/m)[0]}---\n${JSON.stringify(doc)}`;
    const log: string[] = [];
    const e = new PolicyEngine(loadPolicyStore([{ name: 'two.yaml', text }]), {
      cacheSize: 0,
      registry: { credentials: () => undefined, onRequest: (m, u) => void log.push(`${m} ${new URL(u).pathname}`) },
    });
    const image = `${reg.host}/acme/reads:v1@${digest}`;
    const judge = async () => {
      log.length = 0;
      const v = await e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));
      assert.deepEqual(v.errors, []);
      assert.equal(v.allowed, true);
      assert.deepEqual(log, [...new Set(log)], `a request was repeated: ${log.join(', ')}`);
      return [...log];
    };
    const hex = digest.slice('sha256:'.length);
    const first = await judge();
    // docker-registry 2.8 has no referrers API: 404, then the tag-schema index.
    assert.ok(first.includes(`GET /v2/acme/reads/referrers/${digest}`), first.join(', '));
    assert.ok(first.includes(`GET /v2/acme/reads/manifests/sha256-${hex}`));
    assert.ok(first.includes(`GET /v2/acme/reads/manifests/sha256-${hex}.sig`));
    assert.equal(first.length, 5, first.join(', '));
    // Known now to keep its referrers in the tag schema: the API is not asked again.
    const second = await judge();
    assert.ok(!second.some((r) => r.includes('/referrers/')), second.join(', '));
    assert.equal(second.length, 4, second.join(', '));
    // A rollout: ten pods of the image at once (no decision cached) share one set of reads.
    log.length = 0;
    const pods = await Promise.all(
      Array.from({ length: 10 }, () => e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000))),
    );
    assert.ok(pods.every((v) => v.allowed));
    assert.equal(log.length, 4, log.join(', '));
    // Pods with other pull credentials read for themselves (another client): credentials are never borrowed.
    log.length = 0;
    const secret = { auths: { [reg.host]: { username: 'someone', password: 'else' } } };
    await Promise.all([
      e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000)),
      e.check({ image, namespace: 'default', kind: 'Pod', labels: {}, pullSecrets: [secret] }, AbortSignal.timeout(20_000)),
    ]);
    assert.equal(log.length, 8, log.join(', '));
  });

  test('an image no policy covers is denied (no-match deny), allowed with noMatch allow', async () => {
    const v = await check('other.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000');
    assert.equal(v.allowed, false);
    assert.match(v.errors[0]!, /no matching policies/);
    const lax = new PolicyEngine(engine.store, { noMatch: 'allow', registry: { credentials: () => undefined } });
    assert.equal(
      (await lax.check({ image: 'other.example/app:v1', namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(5000)))
        .allowed,
      true,
    );
  });

  test('decisions are cached by digest and policy; an edited policy re-verifies', async () => {
    const digest = await pushImage(reg, 'acme/cached:v1', 'engine-cached');
    await signImage(dev, `${reg.host}/acme/cached:v1`, 'alice@example.com');
    const image = `${reg.host}/acme/cached@${digest}`;
    assert.equal((await check(image)).allowed, true);
    const before = requests;
    assert.equal((await check(image)).allowed, true);
    assert.equal(requests, before, 'a cached decision makes no registry request');
    // Same policy text: same fingerprint, still cached.
    engine.setStore(loadPolicyStore([{ name: 'seed.yaml', text: seed }]));
    assert.equal((await check(image)).allowed, true);
    assert.equal(requests, before);
    // The identity changed: the cache entry no longer applies.
    engine.setStore(
      loadPolicyStore([{ name: 'seed.yaml', text: seed.replace('subject: alice@example.com', 'subject: carol@example.com') }]),
    );
    const denied = await check(image);
    assert.equal(denied.allowed, false);
    assert.ok(requests > before);
    engine.setStore(loadPolicyStore([{ name: 'seed.yaml', text: seed }]));
  });

  test('a remote TrustRoot: the trusted root read through the instance TUF repository', async () => {
    const cip = seed.split(/^---$/m)[1]!.replaceAll(TRUST_ROOT_NAME, 'tuf-keys');
    const remote = `apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata: {name: tuf-keys}
spec:
  remote:
    mirror: ${dev.stack.tufUrl}
    root: ${readFileSync(dev.stack.tufRootPath).toString('base64')}
`;
    const store = loadPolicyStore([{ name: 'remote.yaml', text: `${remote}---${cip}` }]);
    const image = `${reg.host}/acme/app:v1`;
    const noLoader = new PolicyEngine(store, { registry: { credentials: () => undefined } });
    const refused = await noLoader.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));
    assert.equal(refused.allowed, false);
    assert.match(refused.errors.join('\n'), /TrustRoot tuf-keys: the trusted root from its remote TUF repository .* has not been loaded/);
    const cacheDir = mkdtempSync(join(tmpdir(), 'wx-engine-tuf-'));
    try {
      const e = new PolicyEngine(store, { registry: { credentials: () => undefined }, loadTrustRoot: tufTrustRootLoader({ cacheDir }) });
      const v = await e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));
      assert.deepEqual(v.errors, []);
      assert.equal(v.allowed, true);
      const bad = new PolicyEngine(
        loadPolicyStore([{ name: 'remote.yaml', text: `${remote.replace(dev.stack.tufUrl, 'http://127.0.0.1:9/tuf')}---${cip}` }]),
        {
          registry: { credentials: () => undefined },
          loadTrustRoot: tufTrustRootLoader({ cacheDir, timeoutMs: 2000 }),
        },
      );
      const d = await bad.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));
      assert.equal(d.allowed, false);
      assert.match(d.errors.join('\n'), /TrustRoot tuf-keys: cannot load its trusted root: /);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  test('an air-gapped TrustRoot: the trusted root from a TUF repository tarball (mirrorFS), verified offline', async () => {
    const work = mkdtempSync(join(tmpdir(), 'wx-engine-airgap-'));
    try {
      // A TUF repository published by Waxseal's own publisher, holding the dev instance's trusted root.
      const repoDir = join(work, 'repository');
      const repo = new TufRepository(repoDir);
      const keys = {
        rootSigners: [generateSigner('ed25519')],
        targetsSigner: generateSigner('ecdsa-p256'),
        snapshotSigner: generateSigner('ed25519'),
        timestampSigner: generateSigner('ecdsa-p256'),
      };
      await repo.init({ ...keys, targets: { 'trusted_root.json': new Uint8Array(readFileSync(dev.stack.trustedRootPath)) } });
      const root = Buffer.from(await repo.rootBytes()).toString('base64');
      const tarball = () => {
        const out = join(work, `repo-${Math.random().toString(36).slice(2)}.tgz`);
        const r = spawnSync('tar', ['-czf', out, '-C', work, 'repository']);
        assert.equal(r.status, 0, r.stderr.toString());
        return readFileSync(out).toString('base64');
      };
      const trustRoot = (mirrorFS: string, extra = '') => `apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata: {name: airgap-keys}
spec:
  repository:
    root: ${root}
    mirrorFS: ${mirrorFS}${extra}
`;
      const cip = seed.split(/^---$/m)[1]!.replaceAll(TRUST_ROOT_NAME, 'airgap-keys');
      const cacheDir = join(work, 'cache');
      const image = `${reg.host}/acme/app:v1`;
      const judge = async (tr: string) => {
        const e = new PolicyEngine(loadPolicyStore([{ name: 'airgap.yaml', text: `${tr}---${cip}` }]), {
          registry: { credentials: () => undefined },
          loadTrustRoot: tufTrustRootLoader({ cacheDir }),
        });
        return e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));
      };
      const good = tarball();
      const v = await judge(trustRoot(good));
      assert.deepEqual(v.errors, []);
      assert.equal(v.allowed, true);
      // `targets` and `trustedRootTarget` spelled out: same answer.
      assert.equal((await judge(trustRoot(good, '\n    targets: targets\n    trustedRootTarget: trusted_root.json'))).allowed, true);
      assert.deepEqual(readdirSync(cacheDir), [], 'nothing is kept between loads');

      // Tampered timestamp metadata: its signature no longer verifies.
      const tsPath = join(repoDir, 'timestamp.json');
      const ts = readFileSync(tsPath, 'utf8');
      const doc = JSON.parse(ts);
      doc.signed.expires = '2099-01-01T00:00:00Z';
      writeFileSync(tsPath, JSON.stringify(doc));
      const tampered = await judge(trustRoot(tarball()));
      assert.equal(tampered.allowed, false);
      assert.match(
        tampered.errors.join('\n'),
        /TrustRoot airgap-keys: cannot load its trusted root: the air-gapped TUF repository \(mirrorFS\) failed verification: timestamp was signed by 0\/1 keys/,
      );
      writeFileSync(tsPath, ts);

      // A tampered target: its hash no longer matches the signed targets metadata.
      const targetsDir = join(repoDir, 'targets');
      const [file] = readdirSync(targetsDir).filter((f) => f.endsWith('.trusted_root.json'));
      const original = readFileSync(join(targetsDir, file!));
      writeFileSync(join(targetsDir, file!), Buffer.concat([original, Buffer.from(' ')]));
      const badTarget = await judge(trustRoot(tarball()));
      assert.equal(badTarget.allowed, false);
      assert.match(badTarget.errors.join('\n'), /air-gapped TUF repository \(mirrorFS\) failed verification: .*(hash|length)/i);
      writeFileSync(join(targetsDir, file!), original);

      // A root.json the repository was not signed with.
      const stranger = new TufRepository(join(work, 'stranger'));
      await stranger.init({
        rootSigners: [generateSigner('ed25519')],
        targetsSigner: generateSigner('ed25519'),
        snapshotSigner: generateSigner('ed25519'),
        timestampSigner: generateSigner('ed25519'),
      });
      const wrongRoot = trustRoot(good).replace(root, Buffer.from(await stranger.rootBytes()).toString('base64'));
      const w = await judge(wrongRoot);
      assert.equal(w.allowed, false);
      assert.match(w.errors.join('\n'), /failed verification/);

      // Not a tarball at all: a clear reason, no crash.
      const junk = await judge(trustRoot(Buffer.from('not a tarball').toString('base64')));
      assert.equal(junk.allowed, false);
      assert.match(junk.errors.join('\n'), /TrustRoot airgap-keys: cannot load its trusted root: mirrorFS: not gzip data/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('a hanging registry gives a clear denial within the deadline', async () => {
    const sockets = new Set<Socket>();
    const hang = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(hang.address() as { port: number }).port}`;
    const store = loadPolicyStore([{ name: 'seed.yaml', text: seed.replace(`${reg.host}/**`, `${host}/**`) }]);
    const e = new PolicyEngine(store, { registry: { credentials: () => undefined, timeoutMs: 60_000, retries: 0 } });
    const t0 = Date.now();
    const v = await e.check({ image: `${host}/acme/app:v1`, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(500));
    const took = Date.now() - t0;
    assert.equal(v.allowed, false);
    assert.ok(took < 2000, `answered in ${took} ms`);
    assert.match(v.errors[0]!, /verifying .*: .*(deadline|aborted|timeout|timed out)/i);
    for (const s of sockets) s.destroy();
    hang.close();
  });
});
