// The sigstore-conformance entrypoint (conformance/waxseal-conformance): verify-bundle over real
// vectors, by file and by sha256 digest, with identities and with a key, plus argument handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs, artifactArgument } from '../../../conformance/cli.ts';
import { vectorsPresent, SKIP_MESSAGE, VECTORS_DIR } from './vectors/load.ts';

const ENTRYPOINT = new URL('../../../conformance/waxseal-conformance', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(ENTRYPOINT, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('arguments: flags in any order, FILE_OR_DIGEST rules', () => {
  const a = parseArgs(['verify-bundle', '--staging', '--bundle', 'b.json', '--key', 'k.pem', `sha256:${'ab'.repeat(32)}`]);
  assert.equal(a.command, 'verify-bundle');
  assert.equal(a.flags.get('--staging'), true);
  assert.equal(a.flags.get('--bundle'), 'b.json');
  assert.deepEqual(a.positional, [`sha256:${'ab'.repeat(32)}`]);
  assert.deepEqual(artifactArgument(`sha256:${'AB'.repeat(32)}`), { digest: { algorithm: 'sha256', value: 'ab'.repeat(32) } });
  // Not a well-formed digest: a path, which does not exist.
  throwsWithCode(() => artifactArgument('sha256:abc'), 'ERR_IO', /cannot read artifact sha256:abc/);
  throwsWithCode(() => parseArgs(['verify-bundle', '--bundle']), 'ERR_INVALID_INPUT', /needs a value/);
});

test('unknown command and missing trusted root exit 1 with an error code', () => {
  const r = run(['frobnicate']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^ERR_INVALID_INPUT: unknown command/);
});

if (!vectorsPresent()) {
  test('conformance verify-bundle over vectors', { skip: SKIP_MESSAGE }, () => {});
} else {
  const v = (id: string, f: string) => join(VECTORS_DIR, id, f);
  const root = (name: string) => join(VECTORS_DIR, 'trusted-roots', name);
  const id = 'java-v0.3-hashedrekord-production';
  const common = [
    '--bundle',
    v(id, 'bundle.sigstore.json'),
    '--certificate-identity',
    'appu@google.com',
    '--certificate-oidc-issuer',
    'https://accounts.google.com',
  ];

  test('verify-bundle: a valid bundle by file and by digest', () => {
    let r = run(['verify-bundle', ...common, '--trusted-root', root('public-good.json'), v(id, 'artifact.txt')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /verified: signed by appu@google.com/);
    r = run([
      'verify-bundle',
      ...common,
      '--trusted-root',
      root('public-good.json'),
      'sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf',
    ]);
    assert.equal(r.status, 0, r.stderr);
    // The trusted root may also come from the environment.
    r = run(['verify-bundle', ...common, v(id, 'artifact.txt')], { WAXSEAL_TRUSTED_ROOT: root('public-good.json') });
    assert.equal(r.status, 0, r.stderr);
  });

  test('verify-bundle: wrong identity, wrong digest, wrong instance, no trusted root', () => {
    let r = run([
      'verify-bundle',
      ...common.slice(0, 3),
      'someone@else',
      ...common.slice(4),
      '--trusted-root',
      root('public-good.json'),
      v(id, 'artifact.txt'),
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_IDENTITY: identity.san/);
    r = run(['verify-bundle', ...common, '--trusted-root', root('public-good.json'), `sha256:${'00'.repeat(32)}`]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_ARTIFACT/);
    r = run(['verify-bundle', ...common, '--trusted-root', root('staging.json'), v(id, 'artifact.txt')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_THRESHOLD: threshold.tlog/);
    r = run(['verify-bundle', ...common, v(id, 'artifact.txt')], { WAXSEAL_TRUSTED_ROOT: '' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_CONFIG: no trusted root/);
  });

  test('verify-bundle --key: the key is used, and the default thresholds apply', () => {
    const k = 'go-v0.3-public-key-tsa-only';
    const args = [
      'verify-bundle',
      '--bundle',
      v(k, 'bundle.sigstore.json'),
      '--key',
      v(k, 'key.pem'),
      '--trusted-root',
      root('sigstore-go-public-key-validity.json'),
    ];
    // Signature, key and timestamp verify; this TSA-only bundle then misses the default
    // requirement of one transparency-log entry.
    let r = run([...args, v(k, 'artifact.txt')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_THRESHOLD: threshold.tlog/);
    // A different artifact fails earlier, at the bundle's digest.
    r = run([...args, `sha256:${'11'.repeat(32)}`]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_ARTIFACT: artifact.digest/);
    // A bundle signed with a certificate is not accepted with --key.
    r = run([
      'verify-bundle',
      '--bundle',
      v(id, 'bundle.sigstore.json'),
      '--key',
      v(k, 'key.pem'),
      '--trusted-root',
      root('public-good.json'),
      v(id, 'artifact.txt'),
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERR_VERIFY_KEY: key.mismatch/);
  });
}
