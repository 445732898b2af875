// TSA timestamps per second: DER requests as Sigstore's k6 script sends them
// (SHA-256 digest, nonce, certReq=true) at c=64, next to the bare node:http JSON server measured
// in the same run. Bare and TSA are measured in alternating rounds so that load from elsewhere
// on the machine hits both alike; the ratio is taken per round. A sampled response must pass
// `openssl ts -verify` (before and after the load) for the figures to count.
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnServer, wrk, summary, median, cpuSeconds, fmt, type LoadResult, type SpawnedServer } from './lib.ts';
import { encodeTimeStampReq } from '../packages/tsa/src/timestamp.ts';
import { sha256 } from '../packages/core/src/crypto.ts';

const here = new URL('.', import.meta.url).pathname;
const CONNECTIONS = 64;
const WARMUP_S = 2;
const MEASURE_S = 5;
const ROUNDS = 3;

/** One request on a fresh connection (no pooled socket that the server may have closed). */
function http(method: string, url: string, body?: Uint8Array, contentType?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false, headers: contentType ? { 'content-type': contentType } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Fetches one token and checks it with openssl against the server's own chain and the query. */
async function verifySample(base: string, query: Uint8Array): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wx-tsa-bench-'));
  try {
    const res = await http('POST', `${base}/api/v1/timestamp`, query, 'application/timestamp-query');
    if (res.status !== 200) throw new Error(`sample request failed: HTTP ${res.status} ${res.body.toString()}`);
    writeFileSync(join(dir, 'r.tsr'), res.body);
    writeFileSync(join(dir, 'q.tsq'), query);
    const pem = (await http('GET', `${base}/api/v1/timestamp/certchain`)).body.toString();
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    writeFileSync(join(dir, 'root.pem'), certs.at(-1) ?? '');
    writeFileSync(join(dir, 'chain.pem'), certs.slice(0, -1).join(''));
    const out = execFileSync(
      'openssl',
      ['ts', '-verify', '-in', 'r.tsr', '-queryfile', 'q.tsq', '-CAfile', 'root.pem', '-untrusted', 'chain.pem'],
      {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    if (!/Verification: OK/.test(out)) throw new Error(`openssl ts -verify did not say OK:\n${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Target {
  name: string;
  pid: number;
  url: string;
  body: Uint8Array | string;
  contentType: string;
}

interface Measured extends LoadResult {
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuUsPerRequest: number;
}

// P-384 at c=64 overloads the TSA: its timeouts are counted with the socket errors.
const ERRORS = 'socket errors (incl. timeouts)';

function run(t: Target, seconds: number): Measured {
  const before = cpuSeconds(t.pid);
  const r = wrk({ url: t.url, body: t.body, contentType: t.contentType, connections: CONNECTIONS, seconds });
  const cpu = cpuSeconds(t.pid) - before;
  return { ...r, cpuUsPerRequest: (cpu * 1e6) / Math.max(1, r.requestsPerSec * seconds) };
}

const query = encodeTimeStampReq({
  hash: 'sha256',
  hashedMessage: sha256(randomBytes(64)),
  nonce: BigInt(`0x${randomBytes(8).toString('hex')}`) & ((1n << 63n) - 1n),
  certReq: true,
});

const servers: SpawnedServer[] = [];
let failed = false;
try {
  const bare = await spawnServer(join(here, 'servers/bare.ts'));
  servers.push(bare);
  const p256 = await spawnServer(join(here, 'servers/tsa.ts'), ['ecdsa-p256']);
  servers.push(p256);
  const p384 = await spawnServer(join(here, 'servers/tsa.ts'), ['ecdsa-p384']);
  servers.push(p384);

  const bareT: Target = {
    name: 'bare',
    pid: bare.child.pid!,
    url: bare.url,
    body: JSON.stringify({ artifactHash: randomBytes(32).toString('base64'), hashAlgorithm: 'sha256' }),
    contentType: 'application/json',
  };
  const tsaTarget = (name: string, server: SpawnedServer): Target => ({
    name,
    pid: server.child.pid!,
    url: `${server.url}/api/v1/timestamp`,
    body: query,
    contentType: 'application/timestamp-query',
  });
  const p256T = tsaTarget('p256', p256);
  const p384T = tsaTarget('p384', p384);

  await verifySample(p256.url, query);
  await verifySample(p384.url, query);
  for (const t of [bareT, p256T, p384T]) run(t, WARMUP_S);

  const bareRuns: Measured[] = [];
  const p256Runs: Measured[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const b = run(bareT, MEASURE_S);
    const t = run(p256T, MEASURE_S);
    bareRuns.push(b);
    p256Runs.push(t);
    ratios.push(t.requestsPerSec / b.requestsPerSec);
  }
  const p384Runs = [run(p384T, MEASURE_S)];

  const bareRps = summary('bare node:http JSON (c=64)', bareRuns, 'req/s', undefined, ERRORS);
  summary('TSA P-256, DER + certReq (c=64)', p256Runs, 'timestamps/s', { name: 'bare', value: bareRps }, ERRORS);
  summary('TSA P-384, DER + certReq (c=64)', p384Runs, 'timestamps/s', { name: 'bare', value: bareRps }, ERRORS);
  process.stdout.write(
    `P-256 ratio per round (same-window pairs): ${ratios.map((r) => `${fmt(100 * r, 1)}%`).join(' / ')}; median ${fmt(100 * median(ratios), 1)}%\n`,
  );
  const cpuRatio = median(bareRuns.map((r) => r.cpuUsPerRequest)) / median(p256Runs.map((r) => r.cpuUsPerRequest));
  process.stdout.write(`P-256 by server CPU per request (bare / TSA, less sensitive to load elsewhere): ${fmt(100 * cpuRatio, 1)}%\n`);

  await verifySample(p256.url, query);
  await verifySample(p384.url, query);
  process.stdout.write('sampled tokens verified with openssl ts -verify (-queryfile) before and after the load\n');
  // Timeouts under overload (P-384 at c=64) are reported above; a refused request is a failure.
  if ([...bareRuns, ...p256Runs, ...p384Runs].some((r) => r.non2xx > 0)) failed = true;
} finally {
  for (const s of servers) await s.stop();
}
if (failed) {
  process.stdout.write('FAILED: some requests got a non-2xx answer under load\n');
  process.exit(1);
}
