// Real git against a dev instance: a test repository whose gpg.x509.program is waxseal-git (run
// from source), and an async git runner (the instance runs in this process, so git must never
// be waited for synchronously).
import { before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevStack, type DevStack } from '../../../instance/src/dev/devstack.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';

const GIT_PROGRAM = new URL('../../src/git-client.ts', import.meta.url).pathname;
const CLI_MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Uint8Array; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out\n${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.stdin.on('error', () => {}); // a command that reads no input may exit first
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

export interface GitFixture {
  readonly dir: string;
  readonly stack: DevStack;
  /** The waxseal-git wrapper git runs. */
  readonly program: string;
  /** One identity token for the whole file (as a cached login would be). */
  readonly token: string;
  /** Environment for git and waxseal: the instance's trust, the token, no user or system config. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** A new repository configured for waxseal-git, with one unsigned root commit. */
  repo(name: string): Promise<string>;
  /** Runs git (bounded: 3 minutes, or `timeoutMs`). */
  git(repo: string, args: string[], extraEnv?: NodeJS.ProcessEnv, o?: { input?: string; timeoutMs?: number }): Promise<Run>;
  /** `waxseal <args>` from source. */
  waxseal(args: string[], o?: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<Run>;
}

/**
 * A dev instance (TSA only unless `log`) for one test file, started in a `before` hook; `ready`
 * runs once it is up (top-level `before` hooks do not wait for each other).
 */
export function useGitInstance(
  prefix: string,
  opts: { log?: boolean; email?: string; ready?: (fx: GitFixture) => Promise<void> } = {},
): GitFixture {
  const fx = {} as { dir: string; stack: DevStack; program: string; token: string };
  before(async () => {
    fx.dir = mkdtempSync(join(tmpdir(), prefix));
    fx.stack = await startDevStack({ dataDir: join(fx.dir, 'instance'), port: 0, log: opts.log ?? false });
    fx.program = join(fx.dir, 'waxseal-git');
    writeFileSync(fx.program, `#!/bin/sh\nexec '${process.execPath}' --conditions=waxseal-source '${GIT_PROGRAM}' "$@"\n`);
    chmodSync(fx.program, 0o755);
    fx.token = await fetchDevToken(fx.stack.issuer, opts.email ?? 'alice@example.com');
    await opts.ready?.(fixture);
  });
  after(async () => {
    await fx.stack?.close();
    if (fx.dir) rmSync(fx.dir, { recursive: true, force: true });
  });
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: fx.dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_DATE: undefined,
    NO_COLOR: '1',
    WAXSEAL_CONFIG_DIR: join(fx.dir, 'config'),
    WAXSEAL_SIGNING_CONFIG: fx.stack.signingConfigPath,
    WAXSEAL_TRUSTED_ROOT: fx.stack.trustedRootPath,
    WAXSEAL_GIT_AGENT_SOCKET: join(fx.dir, 'no-agent.sock'),
    WAXSEAL_GIT_AGENT: 'off', // tests that want the agent start it, or turn this on
    SIGSTORE_ID_TOKEN: fx.token,
    ...extra,
  });
  const git: GitFixture['git'] = (repo, args, extraEnv = {}, o = {}) =>
    run('git', args, {
      cwd: repo,
      env: env(extraEnv),
      timeoutMs: o.timeoutMs ?? 180_000,
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
  const fixture: GitFixture = {
    get dir() {
      return fx.dir;
    },
    get stack() {
      return fx.stack;
    },
    get program() {
      return fx.program;
    },
    get token() {
      return fx.token;
    },
    env,
    git,
    async repo(name) {
      const repo = join(fx.dir, name);
      mkdirSync(repo);
      for (const args of [
        ['init', '-q', '-b', 'main'],
        ['config', 'user.name', 'Alice Example'],
        ['config', 'user.email', 'alice@example.com'],
        ['config', 'gpg.format', 'x509'],
        ['config', 'gpg.x509.program', fx.program],
        ['commit', '-q', '--allow-empty', '-m', 'root'],
      ]) {
        const r = await git(repo, args);
        if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
      }
      return repo;
    },
    waxseal: (args, o = {}) =>
      run(process.execPath, ['--conditions=waxseal-source', CLI_MAIN, ...args], { cwd: o.cwd, env: o.env ?? env() }),
  };
  return fixture;
}
