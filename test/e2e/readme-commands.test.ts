// The README's commands and the commands `waxseal env` prints, run as printed in a fresh folder:
// the shell blocks are read from README.md and the commands from env's output, never retyped here.
// A dev instance stands in for `npm start` (with its data in the fresh folder, as `npm start` keeps
// it in .waxseal/dev); `npx waxseal` is the built CLI (`npm run build`, which `npm test` runs first).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO, 'apps/cli/src/main.ts');
const LONG_RUNNING = /^npx waxseal serve\b/;
// Commands the test cannot run inside the test suite: installing, the suite itself, and the
// long-running `npm start`, which the dev instance below replaces.
const NOT_RUN = /^npm (install|ci|test|start)\b/;

/** The commands of each ```sh block: continuation lines joined, here-documents kept whole. */
export function shellBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```sh') continue;
    const cmds: string[] = [];
    let cur: string[] = [];
    let heredoc: string | undefined;
    for (i++; i < lines.length && (heredoc !== undefined || lines[i]!.trim() !== '```'); i++) {
      const line = lines[i]!;
      if (heredoc !== undefined) {
        cur.push(line);
        if (line === heredoc) heredoc = undefined;
      } else if (cur.length === 0 && line.trim() === '') {
        continue;
      } else {
        cur.push(line);
        heredoc = /<<-?\s*'?([A-Za-z_]+)'?/.exec(line)?.[1];
        if (heredoc !== undefined || line.endsWith('\\')) continue;
      }
      if (heredoc === undefined) {
        cmds.push(cur.join('\n'));
        cur = [];
      }
    }
    if (cur.length) cmds.push(cur.join('\n'));
    blocks.push(cmds);
  }
  return blocks;
}

/** The commands `waxseal env` prints: the comment lines after its "# Commands" line. */
function envCommands(output: string): string[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.startsWith('# Commands'));
  assert.ok(start >= 0, `no "# Commands" section in waxseal env's output:\n${output}`);
  return lines
    .slice(start + 1)
    .filter((l) => l.startsWith('#   '))
    .map((l) => l.slice(4));
}

/** A source file of the CLI newer than its build output: `npx waxseal` would run old code. */
function staleBuild(): string | undefined {
  for (const root of ['apps']) {
    for (const w of ['cli']) {
      const src = join(REPO, root, w, 'src');
      const dist = join(REPO, root, w, 'dist');
      const walk = (dir: string): string | undefined => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) {
            const r = walk(p);
            if (r) return r;
          } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
            const out = join(dist, relative(src, p)).replace(/\.ts$/, '.js');
            if (existsSync(out) && statSync(out).mtimeMs < statSync(p).mtimeMs) return relative(REPO, p);
          }
        }
        return undefined;
      };
      const stale = walk(src);
      if (stale) return stale;
    }
  }
  return undefined;
}

interface Step {
  command: string;
  code: number;
  output: string;
}

/**
 * Runs `commands` one after another in ONE bash session in `cwd` (so exports and variables carry
 * over, as in a terminal), each with its own exit status and output. Long-running commands go to
 * the background until they have printed their first line; their process groups are returned.
 */
async function runSession(
  commands: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ steps: Step[]; background: number[] }> {
  const logs = mkdtempSync(join(cwd, '.session-'));
  const script = ['set -m'];
  commands.forEach((c, i) => {
    const log = join(logs, `${i}.log`);
    if (LONG_RUNNING.test(c)) {
      script.push(
        // On lines of their own: a trailing comment in `c` must not swallow the redirections.
        '{',
        c,
        `} >${JSON.stringify(log)} 2>&1 </dev/null &`,
        `echo $! >>${JSON.stringify(join(logs, 'background'))}`,
        `__pid=$!; for __i in $(seq 600); do [ -s ${JSON.stringify(log)} ] && break; kill -0 $__pid 2>/dev/null || break; sleep 0.1; done`,
        // Still running once it has spoken: that is its success.
        `if kill -0 $__pid 2>/dev/null; then echo "${i} 0" >>${JSON.stringify(join(logs, 'rc'))}; else wait $__pid; echo "${i} $?" >>${JSON.stringify(join(logs, 'rc'))}; fi`,
      );
    } else {
      script.push('{', c, `} >${JSON.stringify(log)} 2>&1 </dev/null`, `echo "${i} $?" >>${JSON.stringify(join(logs, 'rc'))}`);
    }
  });
  writeFileSync(join(logs, 'script.sh'), `${script.join('\n')}\n`);
  const code = await new Promise<number | null>((done) => {
    const child = spawn('bash', [join(logs, 'script.sh')], { cwd, env, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (c) => {
      clearTimeout(timer);
      done(c);
    });
  });
  const rcs = new Map(
    (existsSync(join(logs, 'rc')) ? readFileSync(join(logs, 'rc'), 'utf8') : '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ').map(Number) as [number, number]),
  );
  const background = existsSync(join(logs, 'background'))
    ? readFileSync(join(logs, 'background'), 'utf8')
        .trim()
        .split('\n')
        .map(Number)
        .filter((pid) => Number.isInteger(pid) && pid > 1)
    : [];
  const steps = commands.map((command, i) => ({
    command,
    code: rcs.get(i) ?? (code === null ? -2 : -1),
    output: existsSync(join(logs, `${i}.log`)) ? readFileSync(join(logs, `${i}.log`), 'utf8') : '',
  }));
  return { steps, background };
}

function assertAllSucceeded(steps: Step[], what: string): void {
  for (const s of steps) {
    const why = s.code === -2 ? 'timed out' : s.code === -1 ? 'never ran' : `exit ${s.code}`;
    assert.equal(s.code, 0, `${what}: \`${s.command}\` failed (${why}):\n${s.output}`);
  }
}

const children: ChildProcess[] = [];
const groups: number[] = [];
after(async () => {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((done) => {
          if (c.exitCode !== null || c.signalCode !== null) return done();
          const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
          c.on('exit', () => (clearTimeout(t), done()));
          c.kill('SIGTERM');
        }),
    ),
  );
});

/** Starts the dev instance as `npm start` does, with its data in `<cwd>/.waxseal/dev`, on a free port. */
function startDevInstance(cwd: string): Promise<{ url: string }> {
  const child = spawn(process.execPath, ['--conditions=waxseal-source', MAIN, 'dev', '--port', '0', '--json'], {
    cwd,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((done, fail) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`dev instance did not start:\n${err}`)), 120_000);
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      done(JSON.parse(out.slice(0, nl)) as { url: string });
    });
    child.on('exit', (c) => fail(new Error(`dev instance exited ${c}:\n${err}`)));
  });
}

test('every command the README and `waxseal env` print runs as printed in a fresh folder', { timeout: 600_000 }, async (t) => {
  // `npm test` builds first; run alone, say why a fix made in src/ may not show.
  const stale = staleBuild();
  if (stale) t.diagnostic(`${stale} is newer than its build output: run \`npm run build\` so that npx waxseal runs this code`);

  mkdirSync(join(REPO, 'tmp'), { recursive: true });
  // Inside the repository (git-ignored tmp/), so that npx finds this checkout's waxseal.
  const dir = mkdtempSync(join(REPO, 'tmp', 'readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(REPO, 'README.md'), join(dir, 'README.md'));

  // A user's shell: no settings of ours inherited, no TypeScript sources, a config folder of its own.
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1', WAXSEAL_CONFIG_DIR: join(dir, 'config') };
  for (const [k, v] of Object.entries(process.env)) if (!/^(WAXSEAL_|SIGSTORE_|COSIGN_|GITSIGN_|TUF_|NODE_OPTIONS$)/.test(k)) env[k] ??= v;

  const dev = await startDevInstance(dir);

  const blocks = shellBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'));
  const all = blocks.flat();
  const skipped = all.filter((c) => NOT_RUN.test(c));
  const readme = all.filter((c) => !NOT_RUN.test(c));
  t.diagnostic(`README: ${readme.length} commands run, not run: ${skipped.join(' | ')}`);
  assert.ok(readme.some((c) => c.includes('waxseal env')) && readme.some((c) => c.includes('sign-blob')), 'the README commands were found');

  const session = await runSession(readme, dir, env, 300_000);
  groups.push(...session.background);
  assertAllSucceeded(session.steps, 'README');

  // `waxseal env` as the README runs it (inside its evals), and for the dev instance by its URL.
  const fromReadme = readme.flatMap((c) => [...c.matchAll(/\$\((npx waxseal env\b[^)]*)\)/g)].map((m) => m[1]!));
  assert.ok(fromReadme.length >= 2, 'the README runs waxseal env for the dev instance and for a served one');
  const envRuns = [...fromReadme, `npx waxseal env ${dev.url}`];
  for (const [n, envCommand] of envRuns.entries()) {
    const printed = await runSession([envCommand], dir, env, 120_000);
    assertAllSucceeded(printed.steps, envCommand);
    const output = printed.steps[0]!.output;
    let commands = envCommands(output);
    assert.ok(
      commands.some((c) => c.includes('@sigstore/cli attest')),
      `${envCommand}: a sigstore-js signing command`,
    );
    // An instance naming no OIDC provider (the README's `serve` trusts GitHub Actions only) has
    // no identity to sign with here: only its commands that need none can run.
    const identity = /\$(TOKEN|ISSUER|FILE|EMAIL)\b/;
    if (/from \$ISSUER:/.test(output)) {
      t.diagnostic(`${envCommand}: not run (need a GitHub Actions identity): ${commands.filter((c) => identity.test(c)).length} commands`);
      commands = commands.filter((c) => !identity.test(c));
    } else {
      assert.ok(
        commands.some((c) => c.includes('@sigstore/cli verify')),
        `${envCommand}: a sigstore-js verification command`,
      );
    }
    assert.ok(commands.length > 0, `${envCommand}: commands to run`);
    t.diagnostic(`${envCommand}: ${commands.length} commands run`);
    // The inputs the printed commands name: a file, who signs, and an ID token (the README's way).
    const inputs = [
      `eval "$(${envCommand})"`,
      `FILE=env-${n}.txt; echo "an artifact for $FILE" >"$FILE"`,
      'EMAIL=env@example.com',
      'TOKEN="$(npx waxseal dev token --email "$EMAIL")"',
    ];
    const run = await runSession([...inputs, ...commands], dir, env, 300_000);
    assertAllSucceeded(run.steps, `${envCommand} (commands it printed)`);
  }
});
