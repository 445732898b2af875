// Signing a large file (Waxseal issue 11): wall time of `waxseal sign-blob` on a 1 GiB file, as a
// user runs it (the built CLI, a fresh process, against a running dev instance), next to
// `openssl dgst -sha256` on the same file in the same run, and next to sign-blob of a 1-byte
// file (the fixed cost: Node's start-up, the CA and TSA round trips). The file is read once
// before timing, so both read it from the page cache. Target: sign-blob 1 GiB <= 1.10x openssl.
//
//   node bench/sign-large.bench.ts [--runs 5] [--mib 1024]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDevStack } from '../apps/instance/src/dev/devstack.ts';
import { fetchDevToken } from '../apps/dev-idp/src/dev-idp.ts';
import { fmt, median } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, mib: { type: 'string', default: '1024' } } });
const RUNS = Number(values.runs);
const MIB = Number(values.mib);
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'apps', 'cli', 'bin', 'waxseal.js');

// Children run as a user runs them: the built packages (no waxseal-source condition).
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.ts')], { cwd: ROOT, env, encoding: 'utf8' });
if (build.status !== 0) {
  process.stdout.write(`${build.stdout}${build.stderr}sign-large bench: \`npm run build\` failed; nothing measured\n`);
  process.exit(1);
}

/** Wall time of one process, in ms (async: the dev instance runs in this process). */
function timeOnce(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args[0]} exited ${code}: ${err}`)),
    );
  });
}

const dir = mkdtempSync(join(tmpdir(), 'wx-bench-sign-'));
const stack = await startDevStack({ dataDir: join(dir, 'instance'), port: 0, log: false });
try {
  const big = join(dir, 'big.bin');
  const fd = openSync(big, 'w');
  const block = randomBytes(1 << 20);
  for (let i = 0; i < MIB; i++) writeSync(fd, block);
  closeSync(fd);
  readFileSync(big).length; // into the page cache
  const tiny = join(dir, 'tiny.bin');
  writeFileSync(tiny, 'x');
  const token = await fetchDevToken(stack.issuer, 'bench@example.com');
  const sign = (file: string) => [
    BIN,
    'sign-blob',
    file,
    '--bundle',
    join(dir, 'out.sigstore.json'),
    '--signing-config',
    stack.signingConfigPath,
    '--identity-token',
    token,
  ];
  const rows = {
    openssl: { name: `openssl dgst -sha256 (${MIB} MiB)`, run: () => timeOnce('openssl', ['dgst', '-sha256', big]), ms: [] as number[] },
    large: { name: `waxseal sign-blob (${MIB} MiB)`, run: () => timeOnce(process.execPath, sign(big)), ms: [] as number[] },
    small: { name: 'waxseal sign-blob (1 byte)', run: () => timeOnce(process.execPath, sign(tiny)), ms: [] as number[] },
  };
  const order = Object.values(rows);
  await order[1]!.run(); // warm-up: compile cache, keep-alive paths
  for (let round = 0; round < RUNS; round++) {
    for (let i = 0; i < order.length; i++) {
      const r = order[(round + i) % order.length]!;
      r.ms.push(await r.run());
    }
  }
  const ratio = median(rows.large.ms.map((t, i) => t / rows.openssl.ms[i]!));
  process.stdout.write(`workload: whole processes, median of ${RUNS} rounds, rotating order; dev instance in the bench process, no log\n`);
  for (const r of order) process.stdout.write(`${r.name.padEnd(34)} ${fmt(median(r.ms), 0).padStart(6)} ms\n`);
  process.stdout.write(`sign-blob ${MIB} MiB / openssl dgst: ${fmt(ratio, 2)}x (median of per-round ratios; target <= 1.10x)\n`);
} finally {
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
}
