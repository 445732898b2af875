// Transparency log benchmark: durable appends per second and submit-to-inclusion-
// proof latency under concurrent clients posting Rekor v2 hashedrekord entries (P-256 signatures
// over distinct digests, one key per virtual user), next to the floors measured in the same run:
// the disk's fdatasync rate (1 KiB + fdatasync, 2 s) and the P-256 digest-verification ceiling.
//
//   node bench/log.bench.ts [--seconds 15] [--connections 256] [--quick]
//
// The log runs in its own process (bench/servers/log.ts) on an ext4 data directory; wrk drives it
// with a Lua script that sends pre-generated, distinct requests. Every 201 is a durable append
// whose response carries an inclusion proof against a published checkpoint.
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, sign, verify, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { p256 } from '@noble/curves/nist.js';
import { spawnServer, machineLine, fmt, toMs, cpuSeconds } from './lib.ts';
import { verifyP256Batch, p256Job, pointFromUncompressed } from '../packages/rekor/src/fastverify.ts';
import { ecdsaJobSize, nativeEcdsa, nativeEcdsaUnavailableReason, packEcdsaJob } from '../packages/core/src/ecdsa-digest.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '256' },
    quick: { type: 'boolean', default: false },
  },
});
const seconds = values.quick ? 5 : Number(values.seconds);
const warmup = values.quick ? 1 : Number(values.warmup);
const connections = Number(values.connections);
const root = new URL('..', import.meta.url).pathname;
// tmp/ is git-ignored, so a fresh clone does not have it.
mkdirSync(join(root, 'tmp'), { recursive: true });
const scratch = mkdtempSync(join(root, 'tmp', 'log-bench-'));

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------- floors

function fdatasyncRate(): { syncsPerSec: number; p50: number; p99: number } {
  const file = join(scratch, 'fsync.bin');
  const fd = openSync(file, 'w');
  const buf = randomBytes(1024);
  const lat: number[] = [];
  const end = performance.now() + 2000;
  let n = 0;
  while (performance.now() < end) {
    const t = performance.now();
    writeSync(fd, buf);
    fdatasyncSync(fd);
    lat.push(performance.now() - t);
    n++;
  }
  closeSync(fd);
  lat.sort((a, b) => a - b);
  return { syncsPerSec: n / 2, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

function verifyCeilings(): {
  opensslDigestPerSec: number | undefined;
  fastPerSec: number;
  nativeMessagePerSec: number;
  noblePerSec: number;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const point = pointFromUncompressed(raw);
  const n = 3000;
  const msgs = Array.from({ length: n }, (_, i) => Buffer.from(`ceiling ${i}`));
  const sigs = msgs.map((m) => sign('sha256', m, { key: privateKey, dsaEncoding: 'der' }));
  const jobs = msgs.map((m, i) => p256Job(point, createHash('sha256').update(m).digest(), sigs[i]!)!);
  const digests = msgs.map((m) => createHash('sha256').update(m).digest());
  let openssl: number | undefined;
  const addon = nativeEcdsa();
  if (addon) {
    const size = ecdsaJobSize(256);
    const packed = new Uint8Array(n * size);
    msgs.forEach((_, i) => packEcdsaJob(256, raw, digests[i]!, sigs[i]!, packed, i * size));
    const t0 = performance.now();
    for (let i = 0; i < n; i += 64)
      if (addon.verify(256, packed.subarray(i * size, Math.min(n, i + 64) * size), Math.min(64, n - i)).includes(0))
        throw new Error('OpenSSL digest verify rejected a valid signature');
    openssl = n / ((performance.now() - t0) / 1000);
  }
  let t = performance.now();
  for (let i = 0; i < n; i += 256)
    if (verifyP256Batch(jobs.slice(i, i + 256)).includes(false)) throw new Error('fast verify rejected a valid signature');
  const fast = n / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < n; i++) verify('sha256', msgs[i]!, publicKey, sigs[i]!);
  const native = n / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < 200; i++)
    p256.verify(sigs[i]!, createHash('sha256').update(msgs[i]!).digest(), raw, { prehash: false, format: 'der', lowS: false });
  const noble = 200 / ((performance.now() - t) / 1000);
  return { opensslDigestPerSec: openssl, fastPerSec: fast, nativeMessagePerSec: native, noblePerSec: noble };
}

// ---------------------------------------------------------------------------- load

/** Pre-generates `n` distinct v2 hashedrekord requests, one P-256 key per virtual user. */
function requests(n: number, users: number): string {
  const keys = Array.from({ length: users }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { privateKey, spki: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
  });
  const lines: string[] = [];
  const salt = randomBytes(8).toString('hex');
  for (let i = 0; i < n; i++) {
    const k = keys[i % users]!;
    const artifact = Buffer.from(`bench artifact ${salt} ${i}`);
    const digest = createHash('sha256').update(artifact).digest('base64');
    const sig = sign('sha256', artifact, { key: k.privateKey, dsaEncoding: 'der' }).toString('base64');
    lines.push(
      JSON.stringify({
        hashedRekordRequestV002: {
          digest,
          signature: { content: sig, verifier: { publicKey: { rawBytes: k.spki }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' } },
        },
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

interface RunResult {
  serverCores: number;
  cpuUsPerAppend: number;
  machineBusyPct: number;
  acked: number;
  sizeDelta: number;
  appendsPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function treeSize(url: string): Promise<number> {
  return ((await (await fetch(`${url}/api/v1/log`)).json()) as { treeSize: number }).treeSize;
}

function wrkRun(
  url: string,
  bodyFile: string,
  secs: number,
  conns: number,
  pin: boolean,
): { rps: number; p50: number; p90: number; p99: number; non2xx: number; errors: number } {
  const lua = join(scratch, 'post.lua');
  writeFileSync(
    lua,
    [
      'local bodies = {}',
      `for line in io.lines("${bodyFile}") do bodies[#bodies + 1] = line end`,
      'local i = 0',
      'wrk.method = "POST"',
      'wrk.headers["Content-Type"] = "application/json"',
      'request = function() i = i + 1; if i > #bodies then i = 1 end; return wrk.format(nil, "/api/v2/log/entries", nil, bodies[i]) end',
      'local non2xx = 0',
      'response = function(status) if status ~= 201 then non2xx = non2xx + 1 end end',
      'done = function(summary) io.write(string.format("ERRORS %d %d %d %d\\n", summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout)) end',
    ].join('\n'),
  );
  const args = ['-t', '1', '-c', String(conns), '-d', `${secs}s`, '--timeout', '10s', '--latency', '-s', lua, url];
  const out = execFileSync(pin ? 'taskset' : 'wrk', pin ? ['-c', '1', 'wrk', ...args] : args, {
    encoding: 'utf8',
    timeout: (secs + 60) * 1000,
  });
  const e = /ERRORS (\d+) (\d+) (\d+) (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p90: toMs(/\s90%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    errors: e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0,
  };
}

interface Config {
  name: string;
  batchSize: number;
  batchDelayMs: number;
  checkpointIntervalMs: number;
  verifyWorkers: number;
  httpWorkers: number;
  pin: boolean;
  /** Concurrent clients (wrk connections); default --connections. */
  connections?: number;
}

function machineTicks(): { idle: number; total: number } {
  const l = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return { idle: l[3]! + l[4]!, total: l.reduce((a, b) => a + b, 0) };
}

async function runConfig(c: Config, bodyFile: string, warmBodyFile: string): Promise<RunResult> {
  const dataDir = mkdtempSync(join(scratch, 'data-'));
  const args = [
    '--data-dir',
    dataDir,
    '--hostname',
    'log.bench.test',
    '--key-kind',
    'ed25519',
    '--batch-size',
    String(c.batchSize),
    '--batch-delay-ms',
    String(c.batchDelayMs),
    '--checkpoint-interval-ms',
    String(c.checkpointIntervalMs),
    '--verify-workers',
    String(c.verifyWorkers),
    '--http-workers',
    String(c.httpWorkers),
  ];
  const server = await spawnServer(join(root, 'bench/servers/log.ts'), args);
  if (c.pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(server.child.pid)], { stdio: 'ignore' });
  try {
    const conns = c.connections ?? connections;
    if (warmup > 0) wrkRun(server.url, warmBodyFile, warmup, conns, c.pin);
    const before = await treeSize(server.url);
    const cpu0 = cpuSeconds(server.child.pid!);
    const m0 = machineTicks();
    const r = wrkRun(server.url, bodyFile, seconds, conns, c.pin);
    const cpu1 = cpuSeconds(server.child.pid!);
    const m1 = machineTicks();
    const after = await treeSize(server.url);
    const n = after - before;
    return {
      serverCores: (cpu1 - cpu0) / seconds,
      cpuUsPerAppend: n > 0 ? ((cpu1 - cpu0) / n) * 1e6 : NaN,
      machineBusyPct: 100 * (1 - (m1.idle - m0.idle) / (m1.total - m0.total)),
      acked: n,
      sizeDelta: n,
      appendsPerSec: n / seconds,
      p50: r.p50,
      p90: r.p90,
      p99: r.p99,
      non2xx: r.non2xx,
      errors: r.errors,
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(`${machineLine()}\n`);
  const pinAvailable = hasTaskset();
  const fsync = fdatasyncRate();
  process.stdout.write(
    `fdatasync floor (1 KiB write + fdatasync, 2 s): ${fmt(fsync.syncsPerSec)} syncs/s, p50 ${fmt(fsync.p50, 2)} ms, p99 ${fmt(fsync.p99, 2)} ms\n`,
  );
  const v = verifyCeilings();
  process.stdout.write(
    `P-256 verify ceiling, 1 core: digest via OpenSSL (native addon, used by the log) ${v.opensslDigestPerSec === undefined ? `n/a: ${nativeEcdsaUnavailableReason()}` : `${fmt(v.opensslDigestPerSec)}/s`}; ` +
      `digest via ECDH (fastverify, the fallback) ${fmt(v.fastPerSec)}/s; message (node:crypto) ${fmt(v.nativeMessagePerSec)}/s; digest via @noble/curves ${fmt(v.noblePerSec)}/s\n`,
  );
  // Enough distinct entries for the measured window at up to ~12k/s (the file is cycled if not).
  const perSec = 12_000;
  const users = Math.min(connections, 256);
  const bodyFile = join(scratch, 'bodies.jsonl');
  const warmFile = join(scratch, 'warm.jsonl');
  process.stdout.write(`generating ${fmt(perSec * seconds)} signed requests...\n`);
  writeFileSync(bodyFile, requests(perSec * seconds, users));
  writeFileSync(warmFile, requests(perSec * Math.max(warmup, 1), users));
  const base = { checkpointIntervalMs: 0, verifyWorkers: 0, httpWorkers: 0, pin: false };
  // Clients are closed-loop (each waits for its proof before the next submit), so with a fixed
  // number of them throughput = clients / latency: at 256 the log is latency-bound (a batch's
  // clients all wait for the same checkpoint), with 4x as many it runs at capacity.
  const many = connections * 4;
  const configs: Config[] = [
    { ...base, name: 'defaults (batch 256 / 50 ms), one thread', batchSize: 256, batchDelayMs: 50 },
    { ...base, name: 'batch 256 / 5 ms, 1 verify worker', batchSize: 256, batchDelayMs: 5, verifyWorkers: 1 },
    {
      ...base,
      name: `batch 1024 / 5 ms, 1 verify worker, ${many} clients`,
      batchSize: 1024,
      batchDelayMs: 5,
      verifyWorkers: 1,
      connections: many,
    },
    ...(values.quick
      ? []
      : [
          { ...base, name: 'batch 256 / 5 ms, 2 HTTP front-end threads', batchSize: 256, batchDelayMs: 5, httpWorkers: 2 },
          {
            ...base,
            name: `defaults + 1 verify worker (waxseal serve), ${many} clients`,
            batchSize: 256,
            batchDelayMs: 50,
            verifyWorkers: 1,
            connections: many,
          },
          {
            ...base,
            name: `batch 1024 / 100 ms, checkpoint 250 ms, 1 verify worker, ${many} clients`,
            batchSize: 1024,
            batchDelayMs: 100,
            checkpointIntervalMs: 250,
            verifyWorkers: 1,
            connections: many,
          },
          ...(pinAvailable
            ? [{ ...base, name: 'batch 256 / 5 ms, SUT on core 0, wrk on core 1', batchSize: 256, batchDelayMs: 5, pin: true }]
            : []),
        ]),
  ];
  process.stdout.write(
    `\n${connections} connections unless a row says otherwise, ${seconds} s measured after ${warmup} s warm-up; target >= 5,000 appends/s, p99 submit->proof <= 1,000 ms\n`,
  );
  for (const c of configs) {
    const r = await runConfig(c, bodyFile, warmFile);
    const meets = r.appendsPerSec >= 5000 && r.p99 <= 1000 ? 'MEETS TARGET' : 'below target';
    process.stdout.write(
      `${c.name.padEnd(62)} ${fmt(r.appendsPerSec).padStart(7)} appends/s  p50 ${fmt(r.p50, 1)} ms  p90 ${fmt(r.p90, 1)} ms  p99 ${fmt(r.p99, 1)} ms  non-201 ${r.non2xx}  errors ${r.errors}\n` +
        `${''.padEnd(62)} server ${fmt(r.serverCores, 2)} cores, ${fmt(r.cpuUsPerAppend)} us CPU/append; machine ${fmt(r.machineBusyPct)}% busy (all processes)  [${meets}]\n`,
    );
  }
}

main()
  .catch((e) => {
    process.stderr.write(`log bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(scratch, { recursive: true, force: true }));
