// `rekord` entries signed by the real tools: minisign, GnuPG (Ed25519 and RSA, armored and
// binary, primary key and signing subkey) and ssh-keygen -Y sign. Wrong keys and tampered data
// are refused with 400 and nothing is appended.
// The tools run asynchronously: the log under test serves from this process, and a synchronous
// child (an RSA key generation takes seconds on a loaded machine) froze its event loop long
// enough for its keep-alive timer and the client's to expire together, so that a request went
// out on a connection being closed (the ECONNRESET this test used to fail with now and then).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { respondsWithStatus } from '@waxseal/testkit';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestLog, post, get, b64, type TestLog } from './helpers.ts';

function have(tool: string): boolean {
  try {
    execFileSync(tool, ['-h'], { stdio: 'ignore' });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return true;
}

const work = mkdtempSync(join(tmpdir(), 'wx-signers-'));
const artifact = join(work, 'artifact.txt');
writeFileSync(artifact, 'release 1.2.3 contents\n');
const data = readFileSync(artifact);
let log: TestLog;

before(async () => {
  log = await startTestLog();
});
after(async () => {
  await log.close();
  rmSync(work, { recursive: true, force: true });
});

function rekord(format: string, sig: Uint8Array, key: Uint8Array, content: Uint8Array = data): unknown {
  return {
    apiVersion: '0.0.1',
    kind: 'rekord',
    spec: { signature: { format, content: b64(sig), publicKey: { content: b64(key) } }, data: { content: b64(content) } },
  };
}

async function treeSize(): Promise<number> {
  return (await get(`${log.url}/api/v1/log`)).json.treeSize;
}

async function expectAccepted(body: unknown): Promise<any> {
  const r = await post(`${log.url}/api/v1/log/entries`, body);
  assert.equal(r.status, 201, r.text);
  return JSON.parse(Buffer.from((Object.values(r.json)[0] as any).body, 'base64').toString());
}

/** Rekor v1 refuses the entry with 400 {code: 400, message} for the reason `why`, appending nothing. */
async function expectRefused(body: unknown, what: string, why: RegExp): Promise<void> {
  const n = await treeSize();
  await respondsWithStatus(post(`${log.url}/api/v1/log/entries`, body), 400, 400, why, what);
  assert.equal(await treeSize(), n, `${what}: nothing appended`);
}

const run = promisify(execFile);

const doesNotVerify = /signature does not verify over the artifact with the given key/;

test('minisign (prehashed ED signatures and legacy Ed)', { skip: !have('minisign') && 'minisign not installed' }, async () => {
  const dir = join(work, 'minisign');
  mkdirSync(dir);
  const minisign = (...args: string[]) => run('minisign', args, { cwd: dir });
  await minisign('-G', '-W', '-p', 'k.pub', '-s', 'k.key');
  await minisign('-S', '-s', 'k.key', '-m', artifact, '-x', 'a.minisig');
  await minisign('-S', '-l', '-s', 'k.key', '-m', artifact, '-x', 'legacy.minisig');
  await minisign('-G', '-W', '-p', 'other.pub', '-s', 'other.key');
  const pub = readFileSync(join(dir, 'k.pub'));
  const body = await expectAccepted(rekord('minisign', readFileSync(join(dir, 'a.minisig')), pub));
  assert.match(Buffer.from(body.spec.signature.content, 'base64').toString(), /^untrusted comment:\n/);
  assert.equal(Buffer.from(body.spec.signature.publicKey.content, 'base64').toString(), pub.toString().split('\n')[1]);
  await expectAccepted(rekord('minisign', readFileSync(join(dir, 'legacy.minisig')), pub));
  await expectRefused(
    rekord('minisign', readFileSync(join(dir, 'a.minisig')), readFileSync(join(dir, 'other.pub'))),
    'other key',
    doesNotVerify,
  );
  await expectRefused(
    rekord('minisign', readFileSync(join(dir, 'a.minisig')), pub, Buffer.from('tampered')),
    'tampered data',
    doesNotVerify,
  );
  const sigText = readFileSync(join(dir, 'a.minisig'), 'utf8').replace(/^trusted comment: .*$/m, 'trusted comment: forged');
  await expectRefused(rekord('minisign', Buffer.from(sigText), pub), 'forged trusted comment', doesNotVerify);
});

test('GnuPG detached signatures: Ed25519 and RSA keys, armored and binary, signing subkeys', {
  skip: !have('gpg') && 'gpg not installed',
}, async () => {
  const home = join(work, 'gnupg');
  mkdirSync(home, { mode: 0o700 });
  const gpg = async (...args: string[]): Promise<Buffer> =>
    (
      await run('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--pinentry-mode', 'loopback', ...args], {
        encoding: 'buffer',
      })
    ).stdout;
  await gpg('--quick-gen-key', 'Ed Signer <ed@example.com>', 'ed25519', 'sign', 'never');
  await gpg('--quick-gen-key', 'Rsa Signer <rsa@example.com>', 'rsa2048', 'sign', 'never');
  await gpg('--quick-gen-key', 'Default Signer <default@example.com>', 'default', 'default', 'never');
  const fpr = async (uid: string) => /^fpr:+([0-9A-F]{40}):/m.exec((await gpg('--with-colons', '--list-keys', uid)).toString())![1]!;
  await gpg('--quick-add-key', await fpr('default@example.com'), 'ed25519', 'sign', 'never');
  const subkey = /^sub:[^:]*:[^:]*:22:([0-9A-F]{16}):(?:[^:]*:){6}s:/m.exec(
    (await gpg('--with-colons', '--list-keys', 'default@example.com')).toString(),
  )?.[1];
  assert.ok(subkey, 'signing subkey created');
  const artifact2 = join(work, 'artifact2.txt');
  writeFileSync(artifact2, 'second artifact\n');
  const sig = async (uid: string, armor: boolean, file = artifact) => {
    const out = join(work, `${uid}-${armor}.sig`);
    await gpg('--yes', '--local-user', uid, ...(armor ? ['--armor'] : []), '--output', out, '--detach-sign', file);
    return readFileSync(out);
  };
  const key = (uid: string, armor: boolean) => gpg('--export', ...(armor ? ['--armor'] : []), uid);
  const edArmored = await sig('ed@example.com', true);
  const body = await expectAccepted(rekord('pgp', edArmored, await key('ed@example.com', true)));
  assert.match(Buffer.from(body.spec.signature.publicKey.content, 'base64').toString(), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  // Ed25519 signatures are deterministic: a different artifact for the binary variant.
  await expectAccepted(
    rekord('pgp', await sig('ed@example.com', false, artifact2), await key('ed@example.com', false), readFileSync(artifact2)),
  );
  await expectAccepted(rekord('pgp', await sig('rsa@example.com', false), await key('rsa@example.com', true)));
  await expectAccepted(
    rekord('pgp', await sig('rsa@example.com', true, artifact2), await key('rsa@example.com', false), readFileSync(artifact2)),
  );
  await expectAccepted(rekord('pgp', await sig(`${subkey}!`, true), await key('default@example.com', true)));
  // The same signature armored or binary canonicalizes identically: a duplicate.
  await respondsWithStatus(
    post(`${log.url}/api/v1/log/entries`, rekord('pgp', edArmored, await key('ed@example.com', false))),
    409,
    409,
    /equivalent entry already exists/,
  );
  const byEmail = await post(`${log.url}/api/v1/index/retrieve`, { email: 'ED@example.com' });
  assert.equal(byEmail.json.length, 2);
  await expectRefused(rekord('pgp', edArmored, await key('rsa@example.com', true)), 'wrong key', doesNotVerify);
  await expectRefused(rekord('pgp', edArmored, await key('ed@example.com', true), Buffer.from('tampered')), 'tampered data', doesNotVerify);
  await expectRefused(
    rekord('pgp', Buffer.from('-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n'), await key('ed@example.com', true)),
    'garbage signature',
    /pgp: malformed packet header/,
  );
  const secret = await gpg('--export-secret-keys', '--armor', 'ed@example.com');
  await expectRefused(rekord('pgp', edArmored, secret), 'secret key upload', /pgp: expected a PUBLIC KEY BLOCK/);
});

test('ssh-keygen -Y sign (ed25519, ecdsa, rsa) with namespace "file"', {
  skip: !have('ssh-keygen') && 'ssh-keygen not installed',
}, async () => {
  const dir = join(work, 'ssh');
  mkdirSync(dir);
  const keygen = (...args: string[]) => run('ssh-keygen', args, { cwd: dir });
  for (const [t, extra] of [
    ['ed25519', []],
    ['ecdsa', ['-b', '256']],
    ['rsa', ['-b', '2048']],
  ] as const) {
    await keygen('-q', '-t', t, ...extra, '-N', '', '-C', `${t}@example.com`, '-f', `id_${t}`);
    const file = join(dir, `data-${t}`);
    writeFileSync(file, data);
    await keygen('-Y', 'sign', '-n', 'file', '-f', `id_${t}`, file);
    const body = await expectAccepted(rekord('ssh', readFileSync(`${file}.sig`), readFileSync(join(dir, `id_${t}.pub`))));
    assert.match(Buffer.from(body.spec.signature.publicKey.content, 'base64').toString(), /^(ssh-|ecdsa-)\S+ \S+\n$/);
  }
  await keygen('-q', '-t', 'ed25519', '-N', '', '-f', 'other');
  const file = join(dir, 'data-ns');
  writeFileSync(file, data);
  await keygen('-Y', 'sign', '-n', 'git', '-f', 'id_ed25519', file);
  await expectRefused(
    rekord('ssh', readFileSync(`${file}.sig`), readFileSync(join(dir, 'id_ed25519.pub'))),
    'namespace git',
    /namespace must be "file", not "git"/,
  );
  await expectRefused(
    rekord('ssh', readFileSync(join(dir, 'data-ed25519.sig')), readFileSync(join(dir, 'other.pub'))),
    'other key',
    doesNotVerify,
  );
  await expectRefused(
    rekord('ssh', readFileSync(join(dir, 'data-ed25519.sig')), readFileSync(join(dir, 'id_ed25519.pub')), Buffer.from('tampered')),
    'tampered data',
    doesNotVerify,
  );
  const search = await post(`${log.url}/api/v1/index/retrieve`, {
    publicKey: { format: 'ssh', content: b64(readFileSync(join(dir, 'id_rsa.pub'))) },
  });
  assert.equal(search.json.length, 1);
});
