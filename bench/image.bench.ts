// Image verification against a local registry (docker-registry 2.8, no referrers API): what
// `waxseal verify` does after start-up (resolve the tag, find the attachments, fetch them,
// verify), next to a bare fetch loop making the same GETs in the same run, and the number of
// registry requests per verification, for both of cosign's formats.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrustedRootJson } from '../packages/bundle/src/index.ts';
import { Verifier } from '../packages/verify/src/index.ts';
import { COSIGN, RegistryClient, findBundles, findLegacy, resolveImage, verifyImageAttachments } from '../packages/oci/src/index.ts';
import { pushImage, registryToolsMissing, startRegistry } from '../packages/oci/test/registry-fixture.ts';
import { startDevStack } from '../apps/instance/src/dev/devstack.ts';
import { fetchDevToken } from '../apps/dev-idp/src/dev-idp.ts';
import { fmt, median } from './lib.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const missing = registryToolsMissing();
if (missing) {
  process.stdout.write(`image bench: ${missing}; skipped\n`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'wx-image-bench-'));
const reg = await startRegistry();
const stack = await startDevStack({ dataDir: join(dir, 'instance'), port: 0 });
try {
  const email = 'bench@example.com';
  const cli = new URL('../apps/cli/src/main.ts', import.meta.url).pathname;
  const images: Record<string, string> = {};
  for (const format of ['bundle', 'legacy'] as const) {
    await pushImage(reg, `bench/${format}:v1`, format);
    images[format] = `${reg.host}/bench/${format}:v1`;
    const token = await fetchDevToken(stack.issuer, email);
    // Async: the dev instance runs in this process and must keep answering.
    await promisify(execFile)(
      process.execPath,
      [
        ...process.execArgv,
        cli,
        'sign',
        images[format]!,
        '--signing-config',
        stack.signingConfigPath,
        '--identity-token',
        token,
        ...(format === 'legacy' ? ['--new-bundle-format=false'] : []),
      ],
      { timeout: 60_000 },
    );
  }
  const root = parseTrustedRootJson(readFileSync(stack.trustedRootPath, 'utf8'));
  const hasTlogs = root.tlogs.length > 0;
  const verifier = new Verifier(root, {
    tlogThreshold: hasTlogs ? 1 : 0,
    ctlogThreshold: 0,
    skipSctUnsafe: true,
    timestampThreshold: hasTlogs ? 0 : 1,
    observerTimestampThreshold: 1,
  });
  const policy = { identities: [{ subjectAlternativeName: email, issuer: stack.issuer }] };

  for (const format of ['bundle', 'legacy'] as const) {
    const urls: string[] = [];
    const client = new RegistryClient({ credentials: () => undefined, onRequest: (m, u) => urls.push(`${m} ${u}`) });
    const verifyOnce = async () => {
      const img = await resolveImage(client, images[format]!);
      let found = (await findBundles(client, img.repo, img.digest, { predicateType: COSIGN.signPredicateType })).attachments;
      if (!found.length) found = (await findLegacy(client, img.repo, img.digest, 'sig')).attachments;
      return verifyImageAttachments(verifier, found, { digest: img.digest, policy, kind: 'signature', image: images[format]! });
    };
    const first = await verifyOnce();
    if (first.verified.length !== 1) throw new Error(`${format}: expected one verified signature`);
    const perVerification = urls.length;
    const gets = urls.map((u) => u.slice(u.indexOf(' ') + 1));
    // The same GETs, bare: fetch with the manifest Accept header, bodies read, nothing checked.
    const accept =
      'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';
    const bare = async () => {
      for (const u of gets) await (await fetch(u, { headers: { accept } })).arrayBuffer();
    };
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 20; i++) {
      await verifyOnce();
      await bare();
    }
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      await verifyOnce();
      ours.push(performance.now() - t);
      t = performance.now();
      await bare();
      base.push(performance.now() - t);
    }
    const o = median(ours);
    const b = median(base);
    process.stdout.write(
      `${format} format: ${perVerification} registry requests per verification (${urls
        .slice(0, perVerification)
        .map((u) => u.replace(/^GET https?:\/\/[^/]+\/v2\/[^/]+\/[^/]+\//, ''))
        .map((p) => p.replace(/sha256[:-][0-9a-f]{64}/g, '<d>'))
        .join(', ')})\n` + `  verify ${fmt(o, 2)} ms median vs bare GETs ${fmt(b, 2)} ms: ${fmt(o / b, 2)}x (${ROUNDS} rounds)\n`,
    );
  }
} finally {
  await stack.close();
  await reg.close();
  rmSync(dir, { recursive: true, force: true });
}
