// Private keys and audit data on disk are the owner's alone: after `ca init`, `tsa init`, the dev
// instance's first start and `waxseal serve`, every such file is 0600, with the CLI run under
// umask 000 and whatever was at the path before. A file already at a key path is refused (and
// replaced, 0600, with --force); a symlink there is always refused and its target left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileMode, useTempDir } from '@waxseal/testkit';
import { failedWithCode, type CliResult } from '../helpers/cli.ts';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
// `umask 000` in the shell, then the CLI in its place: the files' modes must not come from the umask.
const UMASK_000 = ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, MAIN];

const tmp = useTempDir('wx-secrets-');

function spawnCli(args: string[]): ChildProcess {
  return spawn('sh', [...UMASK_000, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs the CLI to completion under umask 000. A `dev` or `serve` that starts (prints its report)
 * when it should have refused is stopped, so that the test fails instead of waiting forever.
 */
function run(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (args[0] === 'dev' || args[0] === 'serve') child.kill('SIGTERM');
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Starts a long-running command (`dev`, `serve`) with --json, resolves once it reports it is up. */
function startServer(args: string[]): Promise<{ report: Record<string, unknown>; stop(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli([...args, '--json']);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!stdout.includes('\n')) return;
      resolve({
        report: JSON.parse(stdout.slice(0, stdout.indexOf('\n'))) as Record<string, unknown>,
        stop: () => (child.kill('SIGTERM'), exited),
      });
    });
    child.on('error', reject);
    void exited.then((code) => reject(new Error(`waxseal ${args.join(' ')} exited (${code}) before it was up:\n${stderr}`)));
  });
}

function assertOwnerOnly(paths: string[]): void {
  for (const p of paths) {
    assert.ok(existsSync(p), `${p} exists`);
    assert.equal(fileMode(p).toString(8), '600', `${p} is 0600`);
  }
}

function assertPrivateKey(p: string): void {
  assert.match(readFileSync(p, 'utf8'), /^-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/, p);
}

/** A file at `path` that is not ours (0644), and a symlink's target, to check they are left alone. */
function plant(path: string, text = 'not a key\n'): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text, { mode: 0o644 });
}

function assertUntouched(path: string, text = 'not a key\n'): void {
  assert.equal(readFileSync(path, 'utf8'), text, `${path} content`);
  assert.equal(fileMode(path).toString(8), '644', `${path} mode`);
}

for (const cmd of ['ca', 'tsa'] as const) {
  const leafKey = cmd === 'ca' ? 'intermediate.key' : 'tsa.key';

  for (const name of ['root.key', leafKey]) {
    test(`${cmd} init refuses an existing ${name} without --force; with it, the keys are new 0600 files under umask 000`, async () => {
      const out = join(tmp.dir, `${cmd}-existing-${name}`);
      plant(join(out, name));
      failedWithCode(await run([cmd, 'init', '--out', out]), 'ERR_CONFLICT', /exists.*--force/);
      assertUntouched(join(out, name));
      // Refused before anything was written.
      assert.deepEqual(readdirSync(out), [name]);

      const r = await run([cmd, 'init', '--out', out, '--force']);
      assert.equal(r.code, 0, r.stderr);
      // One key replaced, the other created: both 0600 whatever the umask.
      assertOwnerOnly([join(out, 'root.key'), join(out, leafKey)]);
      assertPrivateKey(join(out, 'root.key'));
      assertPrivateKey(join(out, leafKey));
      if (name !== 'root.key') return;
      // Rotation writes the new leaf key the same way.
      const rot = await run([cmd, 'rotate', '--dir', out, '--root-key', join(out, 'root.key'), '--json']);
      assert.equal(rot.code, 0, rot.stderr);
      assertOwnerOnly([fileURLToPath(JSON.parse(rot.stdout).key as string)]);
    });

    test(`${cmd} init refuses a symlink at ${name}, even with --force, and leaves its target alone`, async () => {
      const out = join(tmp.dir, `${cmd}-symlink-${name}`);
      mkdirSync(out);
      const target = join(tmp.dir, `${cmd}-symlink-${name}-target`);
      plant(target);
      symlinkSync(target, join(out, name));
      for (const force of [[], ['--force']]) {
        failedWithCode(await run([cmd, 'init', '--out', out, ...force]), 'ERR_CONFLICT', /symbolic link/);
        assertUntouched(target);
        assert.deepEqual(readdirSync(out), [name]);
      }
    });
  }
}

/** Every file of a dev data folder that holds a private key or audit data. */
function devSecrets(data: string): string[] {
  return [
    join(data, 'ca', 'root.key'),
    join(data, 'ca', 'intermediate.key'),
    join(data, 'tsa', 'tsa.key'),
    join(data, 'log', 'log.key'),
    ...['root', 'targets', 'snapshot', 'timestamp'].map((r) => join(data, 'tuf-keys', `${r}.key`)),
    join(data, 'idp', 'idp-secrets.json'),
    join(data, 'audit.db'),
  ];
}

/** The database and the WAL files SQLite has open beside it (they exist while the instance runs). */
function auditFiles(db: string): string[] {
  return [db, `${db}-wal`, `${db}-shm`, `${db}.anchor.json`].filter((p) => p === db || existsSync(p));
}

test('the dev instance writes its keys and audit data 0600 under umask 000, and keeps them across restarts', async () => {
  const data = join(tmp.dir, 'dev');
  const first = await startServer(['dev', '--data', data, '--port', '0']);
  try {
    assertOwnerOnly([...devSecrets(data), ...auditFiles(join(data, 'audit.db'))]);
    assert.ok(existsSync(`${join(data, 'audit.db')}-wal`), 'the audit database is open in WAL mode');
    devSecrets(data)
      .filter((p) => p.endsWith('.key'))
      .forEach(assertPrivateKey);
  } finally {
    assert.equal(await first.stop(), 0);
  }
  const trustedRoot = readFileSync(join(data, 'trusted_root.json'), 'utf8');
  const second = await startServer(['dev', '--data', data, '--port', '0']);
  try {
    assertOwnerOnly(devSecrets(data));
    // Same keys, same trust: the CA, TSA and log entries are unchanged (only URLs with the port differ).
    const strip = (t: string) => t.replace(/127\.0\.0\.1:\d+/g, 'HOST');
    assert.equal(strip(readFileSync(join(data, 'trusted_root.json'), 'utf8')), strip(trustedRoot));
  } finally {
    assert.equal(await second.stop(), 0);
  }
});

// Keys the first start makes together with a chain: a key there without its chain was not made by
// the dev instance (or its first start was cut short) and is never overwritten.
for (const name of [join('ca', 'root.key'), join('ca', 'intermediate.key'), join('tsa', 'tsa.key')]) {
  const slug = name.replace('/', '-');

  test(`the dev instance refuses a file it did not write at ${name}`, async () => {
    const data = join(tmp.dir, `dev-existing-${slug}`);
    plant(join(data, name));
    failedWithCode(await run(['dev', '--data', data, '--port', '0']), 'ERR_CONFLICT', /exists/);
    assertUntouched(join(data, name));
  });

  test(`the dev instance refuses a symlink at ${name} and leaves its target alone`, async () => {
    const data = join(tmp.dir, `dev-symlink-${slug}`);
    mkdirSync(join(data, name, '..'), { recursive: true });
    const target = join(tmp.dir, `dev-symlink-${slug}-target`);
    plant(target);
    symlinkSync(target, join(data, name));
    failedWithCode(await run(['dev', '--data', data, '--port', '0']), 'ERR_CONFLICT', /symbolic link/);
    assertUntouched(target);
  });
}

// Every key the dev instance creates: a dangling symlink at its path is not followed (which would
// create the key wherever the link points).
for (const name of [
  join('ca', 'root.key'),
  join('tsa', 'tsa.key'),
  join('log', 'log.key'),
  join('tuf-keys', 'root.key'),
  join('idp', 'idp-secrets.json'),
]) {
  test(`the dev instance refuses a dangling symlink at ${name}`, async () => {
    const slug = name.replace('/', '-');
    const data = join(tmp.dir, `dev-dangling-${slug}`);
    mkdirSync(join(data, name, '..'), { recursive: true });
    const target = join(tmp.dir, `dev-dangling-${slug}-target`);
    symlinkSync(target, join(data, name));
    failedWithCode(await run(['dev', '--data', data, '--port', '0']), 'ERR_CONFLICT', /symbolic link/);
    assert.equal(existsSync(target), false, 'nothing written where the link points');
  });
}

test('waxseal serve writes its TUF keys and audit data 0600 under umask 000', async () => {
  const base = join(tmp.dir, 'serve');
  mkdirSync(base);
  assert.equal((await run(['ca', 'init', '--out', join(base, 'ca')])).code, 0);
  assert.equal((await run(['tsa', 'init', '--out', join(base, 'tsa')])).code, 0);
  writeFileSync(join(base, 'log.key'), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const config = join(base, 'waxseal.yaml');
  writeFileSync(
    config,
    [
      'listen: { port: 0 }',
      'data: ./data',
      'ca: { key: ./ca/intermediate.key, chain: ./ca/chain.pem }',
      'tsa: { key: ./tsa/tsa.key, chain: ./tsa/chain.pem }',
      'log: { key: ./log.key }',
      'tuf: { keys: ./tuf-keys }',
      '',
    ].join('\n'),
  );
  const inst = await startServer(['serve', '--config', config]);
  try {
    const db = join(base, 'data', 'audit.db');
    assertOwnerOnly([...['root', 'targets', 'snapshot', 'timestamp'].map((r) => join(base, 'tuf-keys', `${r}.key`)), ...auditFiles(db)]);
    assert.ok(existsSync(`${db}-wal`), 'the audit database is open in WAL mode');
  } finally {
    assert.equal(await inst.stop(), 0);
  }
});
