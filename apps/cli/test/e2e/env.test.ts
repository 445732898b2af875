// `waxseal env` against a running dev instance: from its data folder, and by URL as for any
// instance (through TUF, pinned on first use or from a given root, and from the plain documents).
// The printed commands themselves are run by test/e2e/readme-commands.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { decodePem, decodePemAll } from '@waxseal/core';
import { parseTrustedRootJson } from '@waxseal/bundle';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { failedWithCode, runCli } from '../helpers/cli.ts';

const dev = useDevStack('wx-env-');

interface EnvJson {
  ok: boolean;
  source: string;
  env: Record<string, string>;
  commands: { client: string; command: string }[];
}

async function envJson(args: string[], configDir: string): Promise<{ out: EnvJson; stderr: string }> {
  const r = await runCli(['env', ...args, '--json'], { env: { WAXSEAL_CONFIG_DIR: configDir } });
  assert.equal(r.code, 0, r.stderr);
  return { out: JSON.parse(r.stdout) as EnvJson, stderr: r.stderr };
}

// cosign 2.5+/3 refuse these next to a signing config ("cannot specify service URLs and use signing config").
const COSIGN_SERVICE_SETTINGS = [
  'COSIGN_FULCIO_URL',
  'COSIGN_REKOR_URL',
  'COSIGN_TIMESTAMP_SERVER_URL',
  'COSIGN_OIDC_ISSUER',
  'COSIGN_TLOG_UPLOAD',
];

test('env by URL pins the TUF root on first use, saves verified documents and PEM files, and reuses the pin', async () => {
  const { dir, stack } = dev;
  const configDir = join(dir, 'config-tofu');
  const first = await envJson([stack.url], configDir);
  const digest = createHash('sha256').update(readFileSync(stack.tufRootPath)).digest('hex');
  assert.match(first.stderr, new RegExp(`pinned the TUF root .*on first use \\(sha256 ${digest}\\)`));
  assert.match(first.out.source, /through TUF from the root pinned on first use/);
  const e = first.out.env;
  assert.equal(e.WAXSEAL_URL, stack.url);
  assert.equal(e.WAXSEAL_OIDC_ISSUER, stack.issuer);
  assert.equal(e.SIGSTORE_FULCIO_URL, stack.caUrl);
  assert.equal(e.SIGSTORE_TIMESTAMP_SERVER_URL, stack.tsaUrl);
  assert.equal(e.WAXSEAL_TUF_MIRROR, stack.tufUrl);
  assert.deepEqual(readFileSync(e.WAXSEAL_TRUSTED_ROOT!), readFileSync(stack.trustedRootPath));
  assert.deepEqual(readFileSync(e.WAXSEAL_SIGNING_CONFIG!), readFileSync(stack.signingConfigPath));
  assert.deepEqual(readFileSync(e.WAXSEAL_TUF_ROOT!), readFileSync(stack.tufRootPath));
  // The PEM files hold what the trusted root says, not a copy of the instance's own files.
  const root = parseTrustedRootJson(readFileSync(stack.trustedRootPath));
  const ders = (path: string) => decodePemAll(readFileSync(path, 'utf8')).map((b) => hex(b.der));
  assert.deepEqual(
    ders(e.SIGSTORE_ROOT_FILE!),
    root.certificateAuthorities[0]!.certChain.map((c) => Buffer.from(c).toString('hex')),
  );
  assert.deepEqual(
    ders(e.SIGSTORE_TSA_CERTIFICATE_FILE!),
    root.timestampAuthorities[0]!.certChain.map((c) => Buffer.from(c).toString('hex')),
  );
  assert.equal(e.SIGSTORE_REKOR_URL, stack.logUrl);
  assert.equal(
    Buffer.from(decodePem(readFileSync(e.SIGSTORE_REKOR_PUBLIC_KEY!, 'utf8')).der).toString('hex'),
    hex(root.tlogs[0]!.publicKey.rawBytes!),
  );
  for (const k of COSIGN_SERVICE_SETTINGS) assert.equal(e[k], undefined, `${k} must not be set next to COSIGN_SIGNING_CONFIG`);
  assert.equal(e.COSIGN_SIGNING_CONFIG, e.WAXSEAL_SIGNING_CONFIG);
  const verify = first.out.commands.find((c) => c.client === 'sigstore-js' && c.command.includes(' verify "$FILE.sigstore.json"'));
  assert.ok(verify, 'a sigstore-js verify command');
  assert.match(verify.command, /--ctlog-threshold 0 --tlog-threshold 1$/);

  const again = await envJson([stack.url], configDir);
  assert.doesNotMatch(again.stderr, /pinned the TUF root/);
  assert.match(again.out.source, /from the root pinned in /);
});

test('env by URL with --tuf-root, with --no-tuf, and in fish', async () => {
  const { dir, stack } = dev;
  const pinned = await envJson([stack.url, '--tuf-root', stack.tufRootPath], join(dir, 'config-pinned'));
  assert.match(pinned.out.source, new RegExp(`from the root in ${stack.tufRootPath}`));
  assert.equal(pinned.stderr, '');

  const plain = await envJson([stack.url, '--no-tuf'], join(dir, 'config-plain'));
  assert.match(plain.out.source, /not through TUF/);
  assert.equal(plain.out.env.WAXSEAL_TUF_MIRROR, undefined);
  assert.deepEqual(readFileSync(plain.out.env.WAXSEAL_TRUSTED_ROOT!), readFileSync(stack.trustedRootPath));
  // sigstore-js's CLI reads trust only through TUF: no verify command without it.
  assert.ok(!plain.out.commands.some((c) => c.command.includes('@sigstore/cli verify')));
  assert.ok(plain.out.commands.some((c) => c.command.includes('@sigstore/cli attest')));

  const fish = await runCli(['env', stack.url, '--shell', 'fish'], { env: { WAXSEAL_CONFIG_DIR: join(dir, 'config-fish') } });
  assert.equal(fish.code, 0, fish.stderr);
  assert.ok(fish.stdout.includes(`set -gx WAXSEAL_URL '${stack.url}'`), fish.stdout);
  assert.ok(!/^export /m.test(fish.stdout));
});

test('env for the dev instance from its data folder keeps its files and adds the dev CI issuer', async () => {
  const { dir, stack } = dev;
  const { out } = await envJson(['--data', stack.dataDir], join(dir, 'config-dev'));
  assert.equal(out.env.WAXSEAL_TRUSTED_ROOT, stack.trustedRootPath);
  assert.equal(out.env.WAXSEAL_SIGNING_CONFIG, stack.signingConfigPath);
  assert.equal(out.env.WAXSEAL_DEV_CI_ISSUER, stack.ciIssuer);
  assert.equal(out.env.WAXSEAL_TUF_ROOT, stack.tufRootPath);
});

test('env refuses what it cannot trust or find, with one-line errors', async () => {
  const { dir, stack } = dev;
  const env = { WAXSEAL_CONFIG_DIR: join(dir, 'config-bad') };
  // Plain http to another host would be unauthenticated: refused before any request.
  failedWithCode(await runCli(['env', 'http://signing.example.invalid'], { env }), 'ERR_CONFIG', /plain http.*--tuf-root.*--allow-http/);
  failedWithCode(await runCli(['env', `${stack.url}/nothing-here`], { env }), 'ERR_NOT_FOUND', /publishes no \/trusted_root\.json/);
  failedWithCode(await runCli(['env', 'http://127.0.0.1:1'], { env }), 'ERR_UNAVAILABLE', /cannot reach/);
  const notRoot = await runCli(['env', stack.url, '--tuf-root', stack.trustedRootPath], { env });
  assert.equal(notRoot.code, 3, notRoot.stderr);
  const usage = await runCli(['env', stack.url, '--data', stack.dataDir], { env });
  assert.equal(usage.code, 2, usage.stderr);
  const shell = await runCli(['env', '--shell', 'tcsh'], { env });
  assert.equal(shell.code, 2, shell.stderr);
});

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
