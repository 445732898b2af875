// CLI start-up: wall time of whole processes, as a user sees them, next to two baselines measured
// in the same run: `node -e 0` (Node's own start-up) and a plain sigstore-js script
// (@sigstore/verify) verifying the same bundle as `waxseal verify-blob`.
//
//   node bench/startup.bench.ts [--runs 25]
//
// The CLI is the built one (apps/cli/bin/waxseal.js over dist/, with the compile cache it
// enables), so the bench runs `npm run build` first (incremental). The bundle is a real one from
// the shared vectors (a production Rekor v1 message signature, public-good trusted root). Every
// round runs each command once, in a rotating order, after two warm-up rounds; figures are
// medians over the rounds, and ratios are medians of the per-round ratios, which shared machines
// disturb less than the absolute times.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VECTORS_DIR, vectorsPresent, type CaseJson } from '../packages/verify/test/vectors/load.ts';
import { fmt, median } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: process.env.BENCH_STARTUP_RUNS ?? '25' } } });
const RUNS = Number(values.runs);
const WARMUP = 2;
const ROOT = new URL('..', import.meta.url).pathname;
const NODE = process.execPath;
const BIN = join(ROOT, 'apps', 'cli', 'bin', 'waxseal.js');
const CASE_ID = 'java-v0.3-hashedrekord-production';

// Children run as a user runs them: the built packages (no waxseal-source condition).
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;

const build = spawnSync(NODE, [join(ROOT, 'scripts', 'build.ts')], { cwd: ROOT, env, encoding: 'utf8' });
if (build.status !== 0) {
  process.stdout.write(`${build.stdout}${build.stderr}startup bench: \`npm run build\` failed; nothing measured\n`);
  process.exit(1);
}

interface Command {
  name: string;
  args: string[];
}

// A plain sigstore-js verification, as its README shows it: trust material from the trusted root,
// the bundle from its JSON, one verify call. Run with `-e` from the repository root, whose
// node_modules hold sigstore-js.
const SIGSTORE_JS = `
import { readFileSync } from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
const [artifact, bundlePath, rootPath, san, issuer] = process.argv.slice(1);
const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(readFileSync(rootPath, 'utf8'))));
const verifier = new Verifier(trust, { tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1 });
const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
verifier.verify(toSignedEntity(bundle, readFileSync(artifact)), { subjectAlternativeName: san, extensions: { issuer } });
console.log('Verified OK');
`;

const baseline: Command = { name: 'node -e 0', args: ['-e', '0'] };
const help: Command = { name: 'waxseal --help', args: [BIN, '--help'] };
const commands: Command[] = [baseline, help];
let verifyBlob: Command | undefined;
let sigstoreJs: Command | undefined;
if (vectorsPresent() && existsSync(join(VECTORS_DIR, CASE_ID, 'case.json'))) {
  const dir = join(VECTORS_DIR, CASE_ID);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as CaseJson;
  const artifact = join(dir, c.artifact.file!);
  const bundle = join(dir, c.bundle);
  const root = join(dir, c.trustedRoot);
  const san = c.policy!.certificateIdentity!;
  const issuer = c.policy!.certificateOidcIssuer!;
  verifyBlob = {
    name: 'waxseal verify-blob (1 bundle)',
    args: [
      BIN,
      'verify-blob',
      artifact,
      '--bundle',
      bundle,
      '--trusted-root',
      root,
      '--certificate-identity',
      san,
      '--certificate-oidc-issuer',
      issuer,
    ],
  };
  sigstoreJs = { name: 'sigstore-js verify script', args: ['--input-type=module', '-e', SIGSTORE_JS, artifact, bundle, root, san, issuer] };
  commands.push(verifyBlob, sigstoreJs);
} else {
  process.stdout.write(`startup bench: vectors not found at ${VECTORS_DIR}; verify-blob rows skipped\n`);
}

function timeOnce(c: Command): number {
  const t0 = performance.now();
  const r = spawnSync(NODE, c.args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${c.name} exited with ${r.status}: ${r.stderr}`);
  return ms;
}

const times = new Map<Command, number[]>(commands.map((c) => [c, []]));
for (let round = 0; round < WARMUP + RUNS; round++) {
  for (let i = 0; i < commands.length; i++) {
    const c = commands[(round + i) % commands.length]!;
    const ms = timeOnce(c);
    if (round >= WARMUP) times.get(c)!.push(ms);
  }
}

/** Median over rounds of a's time divided by b's time in the same round. */
const ratio = (a: Command, b: Command) => median(times.get(a)!.map((t, i) => t / times.get(b)![i]!));

const out = (s: string) => process.stdout.write(`${s}\n`);
out(
  `workload: whole processes, median of ${RUNS} rounds (after ${WARMUP} warm-up rounds), commands in rotating order; node ${process.version}`,
);
for (const c of commands) {
  const vsBase = c === baseline ? '' : `   ${fmt(ratio(c, baseline), 2)}x node -e 0`;
  const vsJs = c === verifyBlob && sigstoreJs ? `   ${fmt(ratio(c, sigstoreJs), 2)}x sigstore-js` : '';
  out(`${c.name.padEnd(32)} ${fmt(median(times.get(c)!), 1).padStart(7)} ms${vsBase}${vsJs}`);
}
out(`targets: waxseal --help <= 1.50x node -e 0${verifyBlob ? '; waxseal verify-blob <= 1.00x the sigstore-js script' : ''}`);
