// Git signing and verification, against a dev instance in its own process (TSA only):
//  1. `waxseal verify-commits` over N (default 1,000) gitsign-format signed commits: commits per
//     second end to end (the CLI process: start-up, git rev-list and cat-file, policy, output)
//     and in-process (evaluateObject over the same objects), next to the crypto floor: what each
//     commit needs at minimum (importing the leaf's key, the CMS signature, the TSA's signature
//     on its token, the CA's signature on the leaf) measured alone in this run.
//     The commits are signed here with one key and certificate (as the agent signs a rebase),
//     each with its own RFC 3161 timestamp from the instance, and written as loose objects.
//  2. The time `git commit -S` (waxseal-git) adds over an unsigned `git commit`, next to the CA
//     and TSA round trips alone (one certificate request plus one timestamp request).
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
const GIT_PROGRAM = join(ROOT, 'apps/cli/src/git-program.ts');
const node = [...process.execArgv];

const dir = mkdtempSync(join(tmpdir(), 'wx-git-bench-'));
const data = join(dir, 'instance');
const cache = join(dir, 'compile-cache');
// This Node (24) first on PATH: bin/waxseal-git starts with `#!/usr/bin/env node`.
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
process.on('exit', () => {
  stopInstance();
  rmSync(dir, { recursive: true, force: true });
});
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
const cli: number[] = [];
for (let i = 0; i < 3; i++) {
  const r = await runAsync(
    process.execPath,
    [...node, CLI, 'verify-commits', `${base}..main`, '--policy', policyFile, '--repo', repo, '--json'],
    { env },
  );
  if (r.code !== 0) throw new Error(`verify-commits failed: ${r.stderr.slice(0, 500)}`);
  if (JSON.parse(r.stdout).checked !== N) throw new Error('verify-commits did not check every commit');
  cli.push(r.ms);
}
const floorRate = (N * 1000) / median(floorMs);
process.stdout.write(`\nverification over ${N} signed commits (median of ${rounds} rounds; CLI: median of 3 runs)\n`);
report('crypto floor (key + 3 sig checks)', floorRate, 'commits/s');
report('in-process evaluateObject', (N * 1000) / median(inMs), 'commits/s', { name: 'crypto floor', value: floorRate });
report('waxseal verify-commits (CLI)', (N * 1000) / median(cli), 'commits/s', { name: 'crypto floor', value: floorRate });

// ---------------------------------------------------------------- 2. signing
const program = join(dir, 'waxseal-git');
writeFileSync(program, `#!/bin/sh\nexec '${process.execPath}' --conditions=waxseal-source '${GIT_PROGRAM}' "$@"\n`);
chmodSync(program, 0o755);
git('config', 'gpg.format', 'x509');
git('config', 'gpg.x509.program', program);
const unsigned: number[] = [];
const signed: number[] = [];
const trips: number[] = [];
await runAsync('git', ['commit', '-q', '-S', '--allow-empty', '-m', 'warm-up'], { cwd: repo, env }); // fills the compile cache
for (let i = 0; i < SIGN_SAMPLES; i++) {
  unsigned.push((await runAsync('git', ['commit', '-q', '--allow-empty', '-m', `u${i}`], { cwd: repo, env })).ms);
  const s = await runAsync('git', ['commit', '-q', '-S', '--allow-empty', '-m', `s${i}`], { cwd: repo, env });
  if (s.code !== 0) throw new Error(`git commit -S: ${s.stderr}`);
  signed.push(s.ms);
  const t = performance.now();
  const k = new EphemeralKey();
  await requestSigningCertificate({ caUrl: inst.caUrl, token, key: k });
  await requestTimestamp({ tsaUrl: inst.tsaUrl, signature: k.signMessage(new Uint8Array(32)) });
  trips.push(performance.now() - t);
}
// The installed form too (bin/waxseal-git: built JavaScript, compile cache), when `npm run build` has run.
const builtBin = join(ROOT, 'apps/cli/bin/waxseal-git');
const built: number[] = [];
if (existsSync(join(ROOT, 'apps/cli/dist/git-program.js'))) {
  const c = ['-c', `gpg.x509.program=${builtBin}`];
  await runAsync('git', [...c, 'commit', '-q', '-S', '--allow-empty', '-m', 'warm-up'], { cwd: repo, env });
  for (let i = 0; i < SIGN_SAMPLES; i++) {
    const s = await runAsync('git', [...c, 'commit', '-q', '-S', '--allow-empty', '-m', `b${i}`], { cwd: repo, env });
    if (s.code !== 0) throw new Error(`git commit -S (built): ${s.stderr}`);
    built.push(s.ms);
  }
}
const added = median(signed) - median(unsigned);
process.stdout.write(`\nsigning (median of ${SIGN_SAMPLES}; waxseal-git run from source with Node's compile cache)\n`);
report('git commit (unsigned)', median(unsigned), 'ms');
report('git commit -S', median(signed), 'ms');
report('time -S adds (from source)', added, 'ms', { name: 'CA + TSA round trips', value: median(trips) });
if (built.length) {
  report('git commit -S (built bin)', median(built), 'ms');
  report('time -S adds (built bin)', median(built) - median(unsigned), 'ms', { name: 'CA + TSA round trips', value: median(trips) });
} else process.stdout.write('(npm run build first to time the installed bin/waxseal-git as well)\n');
process.stdout.write(`CA + TSA round trips alone: ${fmt(median(trips), 1)} ms\n`);
