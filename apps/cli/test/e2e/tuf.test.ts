// Trust distribution through TUF on the dev instance: sigstore-js's CLI (which reads trust roots
// only through TUF) verifies a waxseal bundle with our trusted root from our TUF mirror, and
// `waxseal trust init` installs the same documents for waxseal's own commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { failedWithCode, runCli, signBlobAs } from '../helpers/cli.ts';

const SIGSTORE_CLI = new URL('../../../../node_modules/@sigstore/cli/bin/run', import.meta.url).pathname;

const dev = useDevStack('wx-tuf-');

test('sigstore-js CLI loads our trusted root from our TUF mirror and verifies a waxseal bundle', async () => {
  const { dir, stack } = dev;
  const artifact = join(dir, 'a.txt');
  writeFileSync(artifact, 'tuf-distributed trust\n');
  const bundle = join(dir, 'a.sigstore.json');
  await signBlobAs(stack, 'tuf@example.com', artifact, bundle);

  // Asynchronous: the instance under test answers from this very process.
  const run = (identity: string) =>
    new Promise<{ status: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          SIGSTORE_CLI,
          'verify',
          bundle,
          '--blob-file',
          artifact,
          '--tuf-mirror-url',
          stack.tufUrl,
          '--tuf-root-path',
          stack.tufRootPath,
          '--tuf-cache-path',
          join(dir, `sigstore-js-cache-${identity}`),
          '--certificate-identity-email',
          identity,
          '--certificate-issuer',
          stack.issuer,
          '--tlog-threshold',
          '0',
          '--ctlog-threshold',
          '0',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, out });
      });
    });
  const ok = await run('tuf@example.com');
  assert.equal(ok.status, 0, ok.out);
  const wrong = await run('someone-else@example.com');
  assert.notEqual(wrong.status, 0);

  // waxseal's own client: install trust through TUF, then verify with no --trusted-root.
  const configDir = join(dir, 'client-config');
  const init = await runCli(['trust', 'init', '--mirror', stack.tufUrl, '--root', stack.tufRootPath], {
    env: { WAXSEAL_CONFIG_DIR: configDir },
  });
  assert.equal(init.code, 0, init.stderr);
  const verified = await runCli(
    ['verify-blob', artifact, '--bundle', bundle, '--certificate-identity', 'tuf@example.com', '--certificate-oidc-issuer', stack.issuer],
    { env: { WAXSEAL_CONFIG_DIR: configDir, WAXSEAL_TRUSTED_ROOT: undefined } },
  );
  assert.equal(verified.code, 0, verified.stderr);
  const badMirror = await runCli(['trust', 'init', '--mirror', `${stack.url}/nope`, '--root', stack.tufRootPath], {
    env: { WAXSEAL_CONFIG_DIR: join(dir, 'other') },
  });
  failedWithCode(badMirror, 'ERR_TUF', /TUF update from .*\/nope failed/, 'bad mirror');
});
