// CA certificates per second (variant "no CT"): POST /api/v2/signingCert with a
// public key + proof of possession and one pre-minted ES256 GitHub Actions token reused for every
// request, as a CI job would. The issuer's discovery document and JWKS are served by this bench
// process on 127.0.0.1. wrk cycles through a pool of pre-made requests, each with its own P-256
// key and proof, so every request costs a key parse and a PoP verification. Figures are printed
// next to the bare node:http JSON server measured in alternating rounds in the same run; a sampled
// certificate must pass `openssl verify` (before and after the load) for the figures to count.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, sign as nodeSign, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK } from 'jose';
import { spawnServer, wrk, parseWrk, summary, median, cpuSeconds, fmt, type LoadResult, type SpawnedServer } from './lib.ts';
import { generateSigner } from '../packages/keys/src/memory.ts';
import { initCaChain } from '../packages/ca/src/chain.ts';
import { parseCertificatesPem, fulcioExtensions } from '../packages/core/src/x509.ts';

const here = new URL('.', import.meta.url).pathname;
const CONNECTIONS = 64;
const WARMUP_S = 2;
const MEASURE_S = 5;
const ROUNDS = 3;
const POOL = 512;

const work = mkdtempSync(join(tmpdir(), 'wx-ca-bench-'));

// ---------- the OIDC issuer (discovery + static JWKS), served from this process ----------
const { privateKey: idpKey, publicKey: idpPub } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [{ ...(await exportJWK(idpPub)), kid: 'bench-1', alg: 'ES256', use: 'sig' }] };
let issuerUrl = '';
const idp = createServer((req, res) => {
  const body =
    req.url === '/.well-known/openid-configuration'
      ? JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/jwks`, id_token_signing_alg_values_supported: ['ES256'] })
      : req.url === '/jwks'
        ? JSON.stringify(jwks)
        : undefined;
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
  res.end(body ?? '{}');
});
await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
issuerUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;

// A GitHub Actions-shaped token, valid for the whole run.
const now = Math.floor(Date.now() / 1000);
const subject = 'repo:octo-org/octo-repo:ref:refs/heads/main';
const token = await new SignJWT({
  iss: issuerUrl,
  aud: 'sigstore',
  sub: subject,
  iat: now,
  nbf: now,
  exp: now + 3600,
  ref: 'refs/heads/main',
  sha: randomBytes(20).toString('hex'),
  repository: 'octo-org/octo-repo',
  repository_owner: 'octo-org',
  repository_owner_id: '65',
  repository_id: '74',
  repository_visibility: 'private',
  run_id: '2002',
  run_number: '7',
  run_attempt: '1',
  runner_environment: 'github-hosted',
  actor: 'octocat',
  actor_id: '12',
  workflow: 'release',
  event_name: 'push',
  ref_type: 'branch',
  job_workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
  job_workflow_sha: randomBytes(20).toString('hex'),
  workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
  workflow_sha: randomBytes(20).toString('hex'),
})
  .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'JWT' })
  .sign(idpKey);

// ---------- CA material: a file-held P-256 (or P-384) issuing key under a P-384 root ----------
async function caFiles(
  kind: 'ecdsa-p256' | 'ecdsa-p384',
): Promise<{ keyUri: string; chainPath: string; rootPem: string; chainPem: string }> {
  const signer = generateSigner(kind);
  const r = await initCaChain({ intermediateSigner: signer, organization: 'waxseal bench' });
  const keyPath = join(work, `ca-${kind}.key`);
  const chainPath = join(work, `chain-${kind}.pem`);
  writeFileSync(keyPath, signer.exportPkcs8Pem(), { mode: 0o600 });
  writeFileSync(chainPath, r.chainPem);
  return { keyUri: `file://${keyPath}`, chainPath, rootPem: r.rootPem, chainPem: r.chainPem };
}

// ---------- the request pool ----------
function signingRequest(): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return JSON.stringify({
    credentials: { oidcIdentityToken: token },
    publicKeyRequest: {
      publicKey: { algorithm: 'ECDSA', content: publicKey.export({ format: 'pem', type: 'spki' }) as string },
      proofOfPossession: nodeSign('sha256', Buffer.from(subject), privateKey).toString('base64'),
    },
  });
}
const pool = Array.from({ length: POOL }, signingRequest);
const poolDir = join(work, 'pool');
execFileSync('mkdir', ['-p', poolDir]);
pool.forEach((b, i) => writeFileSync(join(poolDir, `${i}.json`), b));

/** wrk cycling through the request pool (lib.wrk sends one fixed body; this rotates bodies). */
function wrkPool(url: string, seconds: number): Promise<LoadResult> {
  const u = new URL(url);
  const lua = [
    'local bodies = {}',
    `for i = 0, ${POOL - 1} do local f = io.open("${poolDir}/" .. i .. ".json", "rb"); bodies[i + 1] = f:read("*a"); f:close() end`,
    'local idx = 0',
    'local headers = { ["Content-Type"] = "application/json" }',
    `request = function() idx = idx % ${POOL} + 1; return wrk.format("POST", "${u.pathname}", headers, bodies[idx]) end`,
    'response = function(status) end',
    'done = function(summary, latency, requests) io.write(string.format("ERRORS %d %d %d %d %d\\n", summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout)) end',
  ].join('\n');
  const script = join(work, 'pool.lua');
  writeFileSync(script, lua);
  return new Promise((resolve, reject) => {
    // Asynchronous, so this process keeps serving discovery/JWKS should the CA ask again.
    const child = spawn('wrk', ['-t', '1', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--latency', '-s', script, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(parseWrk(out)));
  });
}

/** Issues one certificate with a fresh key and checks it with openssl and our X.509 reader. */
async function verifySample(base: string, rootPem: string): Promise<void> {
  const res = await fetch(`${base}/api/v2/signingCert`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: signingRequest(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`sample request failed: HTTP ${res.status} ${text}`);
  const certs: string[] = JSON.parse(text).signedCertificateDetachedSct.chain.certificates;
  writeFileSync(join(work, 'leaf.pem'), certs[0]!);
  writeFileSync(join(work, 'inter.pem'), certs.slice(1, -1).join(''));
  writeFileSync(join(work, 'root.pem'), rootPem);
  if (certs.at(-1) !== rootPem) throw new Error('the response chain does not end with the expected root');
  const out = execFileSync('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (!/leaf\.pem: OK/.test(out)) throw new Error(`openssl verify did not say OK:\n${out}`);
  const ext = fulcioExtensions(parseCertificatesPem(certs[0]!)[0]!);
  if (
    ext.buildSignerURI !== 'https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main' ||
    ext.tokenSubject !== subject
  ) {
    throw new Error(`unexpected certificate extensions: ${JSON.stringify(ext)}`);
  }
}

const servers: SpawnedServer[] = [];
let failed = false;
try {
  const p256Files = await caFiles('ecdsa-p256');
  const p384Files = await caFiles('ecdsa-p384');
  const bare = await spawnServer(join(here, 'servers/bare.ts'));
  servers.push(bare);
  const caP256 = await spawnServer(join(here, 'servers/ca.ts'), [issuerUrl, p256Files.keyUri, p256Files.chainPath]);
  servers.push(caP256);
  const caP384 = await spawnServer(join(here, 'servers/ca.ts'), [issuerUrl, p384Files.keyUri, p384Files.chainPath]);
  servers.push(caP384);
  const floor = await spawnServer(join(here, 'servers/ca.ts'), ['--floor']);
  servers.push(floor);

  const bareBody = JSON.stringify({ artifactHash: randomBytes(32).toString('base64'), hashAlgorithm: 'sha256' });
  const runBare = (s: number) =>
    wrk({ url: bare.url, body: bareBody, contentType: 'application/json', connections: CONNECTIONS, seconds: s });
  const p256Url = `${caP256.url}/api/v2/signingCert`;
  const p384Url = `${caP384.url}/api/v2/signingCert`;

  await verifySample(caP256.url, p256Files.rootPem);
  await verifySample(caP384.url, p384Files.rootPem);
  // The floor gets the same request body as the CA (one of the pool), the bare server a tiny one
  // as in every other benchmark.
  const runFloor = (s: number) =>
    wrk({ url: floor.url, body: pool[0]!, contentType: 'application/json', connections: CONNECTIONS, seconds: s });
  runBare(WARMUP_S);
  runFloor(WARMUP_S);
  await wrkPool(p256Url, WARMUP_S);
  await wrkPool(p384Url, WARMUP_S);

  const bareRuns: LoadResult[] = [];
  const floorRuns: LoadResult[] = [];
  const caRuns: LoadResult[] = [];
  const ratios: number[] = [];
  const floorRatios: number[] = [];
  // CPU seconds per request of each server process (user + system), summed over the rounds.
  const cpu = { bare: 0, floor: 0, ca: 0 };
  const done = { bare: 0, floor: 0, ca: 0 };
  const measured = async (which: keyof typeof cpu, pid: number, run: () => LoadResult | Promise<LoadResult>) => {
    const before = cpuSeconds(pid);
    const r = await run();
    cpu[which] += cpuSeconds(pid) - before;
    done[which] += r.requestsPerSec * MEASURE_S;
    return r;
  };
  const usPer = (which: keyof typeof cpu) => `${fmt((1e6 * cpu[which]) / done[which])} us CPU/request`;
  for (let i = 0; i < ROUNDS; i++) {
    const b = await measured('bare', bare.child.pid!, () => runBare(MEASURE_S));
    const f = await measured('floor', floor.child.pid!, () => runFloor(MEASURE_S));
    const c = await measured('ca', caP256.child.pid!, () => wrkPool(p256Url, MEASURE_S));
    bareRuns.push(b);
    floorRuns.push(f);
    caRuns.push(c);
    ratios.push(c.requestsPerSec / b.requestsPerSec);
    floorRatios.push(c.requestsPerSec / f.requestsPerSec);
  }
  const p384Runs = [await wrkPool(p384Url, MEASURE_S)];

  // The figures count only if certificates issued after the load still verify.
  await verifySample(caP256.url, p256Files.rootPem);
  await verifySample(caP384.url, p384Files.rootPem);

  const bareRps = summary('bare node:http JSON (c=64)', bareRuns, 'req/s');
  const floorRps = summary('floor: bare + verify + sign (pool)', floorRuns, 'req/s', { name: 'bare', value: bareRps });
  summary('CA P-256 issuer, pubkey+PoP (c=64)', caRuns, 'certs/s', { name: 'bare', value: bareRps });
  process.stdout.write(
    `${''.padEnd(34)} ratio to bare per round ${ratios.map((r) => `${fmt(100 * r, 1)}%`).join(' / ')}   ` +
      `to floor ${floorRatios.map((r) => `${fmt(100 * r, 1)}%`).join(' / ')} (median ${fmt(100 * median(floorRatios), 1)}% of ${fmt(floorRps)})   ` +
      `\n${''.padEnd(34)} server CPU: bare ${usPer('bare')}, floor ${usPer('floor')}, CA ${usPer('ca')}\n`,
  );
  summary('CA P-384 issuer, pubkey+PoP (c=64)', p384Runs, 'certs/s', { name: 'bare', value: bareRps });
  process.stdout.write(
    `note: wrk rotates ${POOL} pre-made requests (each its own P-256 key and proof, one shared ES256 token); no CT log, no audit hook; ` +
      'sampled certificates passed openssl verify before and after the load\n',
  );
  const ratio = median(ratios);
  process.stdout.write(`target: >= 30% of bare -> ${ratio >= 0.3 ? 'met' : 'NOT met'} (${fmt(100 * ratio, 1)}%)\n`);
} catch (e) {
  failed = true;
  process.stderr.write(`ca bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
} finally {
  for (const s of servers) await s.stop();
  idp.close();
  idp.closeAllConnections();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
