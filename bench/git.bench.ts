// Git signing and verification, against a dev instance in its own process (TSA only):
//  1. `waxseal verify-commits` over N (default 1,000) gitsign-format signed commits: commits per
//     second end to end (the CLI process: start-up, git rev-list and cat-file, policy, worker
//     threads, output), from source and as the built bin, and in-process (evaluateObject over the
//     same objects), next to the crypto floor: what each commit needs at minimum (importing the
//     leaf's key, the CMS signature, the TSA's signature on its token, the CA's signature on the
//     leaf) measured alone, on one thread, in this run. Besides: the built bin over an empty
//     range (start-up: what every run costs whatever the range) and the rate per commit after it.
//     The commits are signed here with one key and certificate (as the agent signs a rebase),
//     each with its own RFC 3161 timestamp from the instance, and written as loose objects.
//  2. The time `git commit -S` (waxseal-git) adds over an unsigned `git commit`: without the
//     agent, for the first signature of a session (agent cold) and the next ones (agent warm),
//     next to the CA and TSA round trips alone (one certificate request plus one timestamp request).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { certPublicKey, isSignedBy, parseCertificate, publicKeyFromSpki, sha256, verifySignature } from '../packages/core/src/index.ts';
import { parseTrustedRootJson } from '../packages/bundle/src/index.ts';
import { parseTimestampResponse } from '../packages/verify/src/index.ts';
import { EphemeralKey, requestSigningCertificate, requestTimestamp } from '../packages/sign/src/index.ts';
import { armorSignature, assembleCmsSignature, evaluateObject, parseSourcePolicy, signedAttributes } from '../packages/git/src/index.ts';
import { verifierFor } from '../apps/cli/src/commands/verify.ts';
import { fetchDevToken } from '../apps/dev-idp/src/dev-idp.ts';
import { fmt, median, report } from './lib.ts';

const N = Number(process.env.BENCH_GIT_COMMITS ?? 1000);
const SIGN_SAMPLES = Number(process.env.BENCH_GIT_SIGN_SAMPLES ?? 5);
const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'apps/cli/src/main.ts');
const node = [...process.execArgv];

const dir = mkdtempSync(join(tmpdir(), 'wx-git-bench-'));
const data = join(dir, 'instance');
const cache = join(dir, 'compile-cache');
// This Node (24) first on PATH: bin/waxseal-git (and the native client) run `node`.
const baseEnv: NodeJS.ProcessEnv = {
  PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
  HOME: dir,
  GIT_CONFIG_NOSYSTEM: '1',
  NODE_COMPILE_CACHE: cache,
  NO_COLOR: '1',
};

function runAsync(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; ms: number; stdout: string; stderr: string }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, ms: performance.now() - t, stdout, stderr }));
  });
}

// ---------------------------------------------------------------- the instance, in its own process
const instance = spawn(process.execPath, [...node, CLI, 'dev', '--data', data, '--port', '0', '--no-log'], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
const stopInstance = () => instance.kill('SIGTERM');
// On any exit, failures included: stop the instance, remove the scratch folder.
// BENCH_GIT_KEEP=1 keeps it (the repository, policy and trusted root), to profile verify-commits.
process.on('exit', () => {
  stopInstance();
  if (process.env.BENCH_GIT_KEEP === '1') process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
});
// bench/run.ts stops a bench that overruns with SIGTERM: the exit handler must still run.
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(1));
for (let i = 0; !existsSync(join(data, 'instance.json')); i++) {
  if (i > 600) throw new Error('the dev instance did not start in 60 s');
  await new Promise((r) => setTimeout(r, 100));
}
const inst = JSON.parse(readFileSync(join(data, 'instance.json'), 'utf8')) as {
  issuer: string;
  caUrl: string;
  tsaUrl: string;
  trustedRootPath: string;
  signingConfigPath: string;
};
const token = await fetchDevToken(inst.issuer, 'alice@example.com');
const env: NodeJS.ProcessEnv = {
  ...baseEnv,
  WAXSEAL_CONFIG_DIR: join(dir, 'config'),
  WAXSEAL_SIGNING_CONFIG: inst.signingConfigPath,
  WAXSEAL_TRUSTED_ROOT: inst.trustedRootPath,
  WAXSEAL_GIT_AGENT_SOCKET: join(dir, 'none.sock'),
  WAXSEAL_GIT_AGENT_IDLE: '120', // an agent left by a failed run goes away on its own
  SIGSTORE_ID_TOKEN: token,
};

// ---------------------------------------------------------------- N signed commits
const repo = join(dir, 'repo');
mkdirSync(repo);
const git = (...args: string[]) => {
  const r = spawnSync('git', args, { cwd: repo, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
git('init', '-q', '-b', 'main');
git('config', 'user.name', 'Alice Example');
git('config', 'user.email', 'alice@example.com');
git('commit', '-q', '--allow-empty', '-m', 'base');
const base = git('rev-parse', 'HEAD');
const tree = git('rev-parse', 'HEAD^{tree}');

process.stdout.write(`signing ${N} commits (one key and certificate, one timestamp each)...\n`);
const key = new EphemeralKey();
const [leaf] = await requestSigningCertificate({ caUrl: inst.caUrl, token, key });
function writeObject(type: string, body: Buffer): string {
  const full = Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body]);
  const id = createHash('sha1').update(full).digest('hex');
  const d = join(repo, '.git', 'objects', id.slice(0, 2));
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, id.slice(2)), deflateSync(full));
  return id;
}
let parent = base;
const raws: { id: string; raw: Uint8Array }[] = [];
const tokens: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const t = 1_700_000_000 + i;
  const payload = `tree ${tree}\nparent ${parent}\nauthor Alice Example <alice@example.com> ${t} +0000\ncommitter Alice Example <alice@example.com> ${t} +0000\n\nchange ${i}\n`;
  const attrs = signedAttributes(sha256(Buffer.from(payload)), new Date());
  const signature = key.signMessage(attrs);
  const timestamp = await requestTimestamp({ tsaUrl: inst.tsaUrl, signature });
  tokens.push(timestamp);
  const armored = armorSignature(assembleCmsSignature({ certificate: leaf!, signedAttributes: attrs, signature, timestamp }));
  const cut = payload.indexOf('\n\n');
  const body = Buffer.from(
    `${payload.slice(0, cut + 1)}gpgsig ${armored.trimEnd().split('\n').join('\n ')}\n${payload.slice(cut + 1)}`,
    'latin1',
  );
  parent = writeObject('commit', body);
  raws.push({ id: parent, raw: new Uint8Array(body) });
}
git('update-ref', 'refs/heads/main', parent);
const policyFile = join(dir, 'source.yaml');
writeFileSync(
  policyFile,
  `spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: ${inst.issuer}\n        subject: alice@example.com\n`,
);

// ---------------------------------------------------------------- 1. verification
const root = parseTrustedRootJson(readFileSync(inst.trustedRootPath, 'utf8'));
const ctx = { policy: parseSourcePolicy(readFileSync(policyFile, 'utf8')), verifier: verifierFor(root, {}), keys: [] };
async function inProcess(): Promise<number> {
  const t = performance.now();
  for (const r of raws) {
    const v = await evaluateObject(r.id, 'commit', r.raw, ctx);
    if (!v.ok) throw new Error(`${r.id}: ${v.check}: ${v.reason}`);
  }
  return performance.now() - t;
}

// The crypto floor: per commit, the CMS signature (P-256), the TSA's signature on its token and
// the CA's signature on the leaf, each verified over the same inputs.
const tsaCert = parseCertificate(root.timestampAuthorities[0]!.certChain[0]!);
const tsaKey = certPublicKey(tsaCert);
const issuer = parseCertificate(root.certificateAuthorities[0]!.certChain[0]!);
const issuerKey = certPublicKey(issuer);
const parsedTokens = tokens.map((t) => parseTimestampResponse(t));
const cmsInputs = raws.map((r) => {
  const m = /-----BEGIN SIGNED MESSAGE-----[\s\S]*?-----END SIGNED MESSAGE-----/.exec(Buffer.from(r.raw).toString('latin1'))![0];
  return m.replace(/\n /g, '\n');
});
const { parseCmsSignature, dearmorSignature } = await import('../packages/git/src/index.ts');
const signerInputs = cmsInputs.map((a) => parseCmsSignature(dearmorSignature(a)).signer);
function floor(): number {
  const t = performance.now();
  for (let i = 0; i < N; i++) {
    const s = signerInputs[i]!;
    const p = parsedTokens[i]!;
    // Every commit generally carries its own certificate, so its key is imported every time.
    const leafKey = publicKeyFromSpki(leaf!.spki);
    if (!verifySignature(leafKey, s.signedAttributes, s.signature, { hash: 'sha256' })) throw new Error('cms');
    if (!verifySignature(tsaKey, p.signer.signedAttributes, p.signer.signature)) throw new Error('tsa');
    if (!isSignedBy(leaf!, issuerKey)) throw new Error('leaf');
  }
  return performance.now() - t;
}

await inProcess(); // warm up
floor();
const rounds = 5;
const inMs: number[] = [];
const floorMs: number[] = [];
for (let i = 0; i < rounds; i++) {
  inMs.push(await inProcess());
  floorMs.push(floor());
}
// End to end: the CLI process from source (type stripping on every start) and the installed bin
// (built JavaScript, compile cache), on one thread (the default) and on two.
async function cliRuns(entry: string[], extra: NodeJS.ProcessEnv = {}, head = 'main'): Promise<number[]> {
  const ms: number[] = [];
  const expected = head === 'main' ? N : 0;
  for (let i = 0; i < 4; i++) {
    const r = await runAsync(
      process.execPath,
      [...entry, 'verify-commits', `${base}..${head}`, '--policy', policyFile, '--repo', repo, '--json'],
      {
        env: { ...env, ...extra },
      },
    );
    if (r.code !== 0) throw new Error(`verify-commits failed: ${r.stderr.slice(0, 500)}`);
    if (JSON.parse(r.stdout).checked !== expected) throw new Error('verify-commits did not check every commit');
    if (i > 0) ms.push(r.ms); // the first run fills the compile cache
    floorMs.push(floor()); // the floor, interleaved: the machine is shared, its load varies
  }
  return ms;
}
const cli = await cliRuns([...node, CLI]);
const builtCli = existsSync(join(ROOT, 'apps/cli/dist/main.js')) ? join(ROOT, 'apps/cli/bin/waxseal.js') : undefined;
const cliBuilt = builtCli ? await cliRuns([builtCli]) : [];
const cliBuilt2 = builtCli ? await cliRuns([builtCli], { WAXSEAL_VERIFY_THREADS: '2' }) : [];
// What does not depend on the range: the built bin over an empty one (Node's start, the modules,
// policy, trust and git), and Node's own start alone.
const startUp = builtCli ? await cliRuns([builtCli], {}, base) : [];
const nodeStart: number[] = [];
for (let i = 0; i < 5; i++) nodeStart.push((await runAsync(process.execPath, ['-e', '0'], { env })).ms);
const floorRate = (N * 1000) / median(floorMs);
const vs = { name: 'crypto floor', value: floorRate };
process.stdout.write(`\nverification over ${N} signed commits (median of ${rounds} rounds; CLI: median of 3 runs)\n`);
report('crypto floor (key + 3 sig checks)', floorRate, 'commits/s');
report('in-process evaluateObject', (N * 1000) / median(inMs), 'commits/s', vs);
report('verify-commits CLI, from source', (N * 1000) / median(cli), 'commits/s', vs);
if (builtCli) {
  report('verify-commits CLI, built bin', (N * 1000) / median(cliBuilt), 'commits/s', vs);
  report('  same, WAXSEAL_VERIFY_THREADS=2', (N * 1000) / median(cliBuilt2), 'commits/s', vs);
  const fixed = median(startUp);
  report('  per commit after start-up', (N * 1000) / Math.max(1, median(cliBuilt) - fixed), 'commits/s', vs);
  process.stdout.write(
    `start-up (built bin, empty range) ${fmt(fixed)} ms, of which Node's own start (node -e 0) ${fmt(median(nodeStart))} ms; ` +
      `at 50% of the floor, ${fmt(N)} commits may take ${fmt((2 * N * 1000) / floorRate)} ms in all\n`,
  );
} else process.stdout.write('(npm run build first to time the installed bin/waxseal as well)\n');

// ---------------------------------------------------------------- 2. signing
// git runs the program once per signature. Measured: an unsigned commit; a signed one with no
// agent (WAXSEAL_GIT_AGENT=off: a key, a certificate and a timestamp per signature, in the full
// program); the first signature of a session (agent cold: it starts the agent, which requests
// the certificate); and the next ones (agent warm: the client hands git's request to the agent,
// which signs with the key it holds and requests the timestamp). Next to the CA and TSA round
// trips alone, and the TSA round trip alone (what a warm signature needs).
const SOURCE_ENTRY = join(ROOT, 'apps/cli/src/git-client.ts');
const program = join(dir, 'waxseal-git');
writeFileSync(program, `#!/bin/sh\nexec '${process.execPath}' --conditions=waxseal-source '${SOURCE_ENTRY}' "$@"\n`);
chmodSync(program, 0o755);
git('config', 'gpg.format', 'x509');
const socket = join(dir, 'agent', 'git-agent.sock');
let seq = 0;
async function commit(prog: string | undefined, e: NodeJS.ProcessEnv): Promise<number> {
  const c = prog ? ['-c', `gpg.x509.program=${prog}`, 'commit', '-S'] : ['commit'];
  const r = await runAsync('git', [...c, '-q', '--allow-empty', '-m', `c${seq++}`], { cwd: repo, env: e });
  if (r.code !== 0) throw new Error(`git ${c.join(' ')}: ${r.stderr}`);
  if (prog && r.stderr !== '') throw new Error(`git commit -S wrote to stderr: ${r.stderr}`);
  return r.ms;
}
async function stopAgent(prog: string): Promise<void> {
  if (!existsSync(socket)) return;
  const r = await runAsync(prog, ['agent', '--stop', '--socket', socket], { env });
  if (r.code !== 0) throw new Error(`agent --stop: ${r.stderr}`);
}
async function roundTrips(): Promise<{ both: number; tsa: number }> {
  const t = performance.now();
  const k = new EphemeralKey();
  await requestSigningCertificate({ caUrl: inst.caUrl, token, key: k });
  const t1 = performance.now();
  await requestTimestamp({ tsaUrl: inst.tsaUrl, signature: k.signMessage(new Uint8Array(32)) });
  const t2 = performance.now();
  return { both: t2 - t, tsa: t2 - t1 };
}
type Lines = { unsigned: number[]; off: number[]; cold: number[]; warm: number[] };
async function measureSigning(prog: string, extra: NodeJS.ProcessEnv = {}): Promise<Lines> {
  const l: Lines = { unsigned: [], off: [], cold: [], warm: [] };
  const agentOn = { ...env, WAXSEAL_GIT_AGENT_SOCKET: socket, ...extra };
  const agentOff = { ...env, WAXSEAL_GIT_AGENT: 'off', ...extra };
  await commit(prog, agentOff); // fills the compile cache
  await stopAgent(prog);
  for (let i = 0; i < SIGN_SAMPLES; i++) {
    l.unsigned.push(await commit(undefined, env));
    l.off.push(await commit(prog, agentOff));
    await stopAgent(prog);
    l.cold.push(await commit(prog, agentOn));
    for (let j = 0; j < 3; j++) l.warm.push(await commit(prog, agentOn));
    // The round trips, interleaved with what they are compared with.
    const r = await roundTrips();
    trips.push(r.both);
    tsaTrips.push(r.tsa);
  }
  await stopAgent(prog);
  return l;
}
const trips: number[] = [];
const tsaTrips: number[] = [];
await roundTrips(); // warm-up
const fromSource = await measureSigning(program);
// The installed form (bin/waxseal-git: the native client when compiled, else built JavaScript with
// the compile cache), when `npm run build` has run.
const builtBin = join(ROOT, 'apps/cli/bin/waxseal-git');
const isBuilt = existsSync(join(ROOT, 'apps/cli/dist/git-client.js'));
const native = join(ROOT, 'packages/git-client-native/build/waxseal-git-native');
const built = isBuilt ? await measureSigning(builtBin, { WAXSEAL_GIT_NATIVE: '0' }) : undefined;
const builtNative = isBuilt && existsSync(native) ? await measureSigning(builtBin) : undefined;
const tripsMs = median(trips);
const rt = { name: 'CA + TSA round trips', value: tripsMs };
function signingLines(label: string, l: Lines): void {
  const u = median(l.unsigned);
  process.stdout.write(`\nsigning, ${label} (median of ${SIGN_SAMPLES}; warm: of ${3 * SIGN_SAMPLES})\n`);
  report('git commit (unsigned)', u, 'ms');
  report('-S adds, no agent (in-process)', median(l.off) - u, 'ms', rt);
  report('-S adds, first (agent cold)', median(l.cold) - u, 'ms', rt);
  report('-S adds, agent warm', median(l.warm) - u, 'ms', rt);
}
signingLines('waxseal-git from source', fromSource);
if (built) signingLines('built bin/waxseal-git, Node.js client', built);
else process.stdout.write('(npm run build first to time the installed bin/waxseal-git as well)\n');
if (builtNative) signingLines('built bin/waxseal-git, native client', builtNative);
else if (built) process.stdout.write('(the native client is not compiled: packages/git-client-native)\n');
process.stdout.write(`CA + TSA round trips alone: ${fmt(tripsMs, 1)} ms (TSA alone ${fmt(median(tsaTrips), 1)} ms)\n`);
// The dev instance keeps this process alive: stop it (the exit handler removes the scratch folder).
process.exit(0);
