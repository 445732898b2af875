// Key URIs as people write them: `ca init --out ca` prints `file://ca/intermediate.key`, a relative
// path in the host position, which WHATWG URL parsing would read as a host named "ca".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { rejectsWithCode, throwsWithCode, useTempDir } from '@waxseal/testkit';
import { generateSigner } from './memory.ts';
import { openSigner, resolveKeyUri } from './open.ts';

const tmp = useTempDir('wx-open-');

test('resolveKeyUri: relative file URIs and bare paths resolve against the base folder', () => {
  const base = '/etc/waxseal';
  assert.equal(resolveKeyUri('file://ca/intermediate.key', base), 'file:///etc/waxseal/ca/intermediate.key');
  assert.equal(resolveKeyUri('file:ca/intermediate.key', base), 'file:///etc/waxseal/ca/intermediate.key');
  assert.equal(resolveKeyUri('file://../keys/log.key', base), 'file:///etc/keys/log.key');
  assert.equal(resolveKeyUri('ca/intermediate.key', base), 'file:///etc/waxseal/ca/intermediate.key');
  assert.equal(resolveKeyUri('file:///srv/k.pem', base), 'file:///srv/k.pem');
  assert.equal(resolveKeyUri('file://localhost/srv/k.pem', base), 'file:///srv/k.pem');
  assert.equal(resolveKeyUri('file:/srv/k.pem', base), 'file:///srv/k.pem');
  assert.equal(resolveKeyUri('/srv/k.pem', base), 'file:///srv/k.pem');
  // Spaces and escapes survive the round trip through a URL.
  assert.equal(resolveKeyUri('file://my keys/a.pem', base), 'file:///etc/waxseal/my%20keys/a.pem');
  assert.equal(resolveKeyUri('file:///srv/my%20keys/a.pem', base), 'file:///srv/my%20keys/a.pem');
  // A relative passphrase file is relative to the same folder; other parameters are kept.
  const withPass = new URL(resolveKeyUri('file://ca/root.key?passphrase-file=pass.txt', base));
  assert.equal(withPass.pathname, '/etc/waxseal/ca/root.key');
  assert.equal(withPass.searchParams.get('passphrase-file'), '/etc/waxseal/pass.txt');
  assert.equal(new URL(resolveKeyUri('file://k.pem?passphrase-env=PW', base)).searchParams.get('passphrase-env'), 'PW');
  // Other schemes are not touched.
  for (const u of ['pkcs11:token=t;object=o?module-path=/m.so', 'awskms:///alias/x', 'memory://ephemeral'])
    assert.equal(resolveKeyUri(u, base), u);
});

test('resolveKeyUri refuses a file URI that names no file, or a broken escape', () => {
  throwsWithCode(() => resolveKeyUri('file://', '/x'), 'ERR_CONFIG', /names no file/);
  throwsWithCode(() => resolveKeyUri('file:///srv/', '/x'), 'ERR_CONFIG', /names no file/);
  throwsWithCode(() => resolveKeyUri('file://ca/%zz.key', '/x'), 'ERR_CONFIG', /percent-escape/);
});

test('openSigner opens file://<relative> against the working folder, and file:///<absolute>', async () => {
  const dir = join(tmp.dir, 'cwd');
  mkdirSync(join(dir, 'ca'), { recursive: true });
  const key = generateSigner('ecdsa-p256');
  writeFileSync(join(dir, 'ca', 'intermediate.key'), key.exportPkcs8Pem(), { mode: 0o600 });
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    for (const uri of ['file://ca/intermediate.key', 'file:ca/intermediate.key', 'ca/intermediate.key']) {
      const s = await openSigner(uri);
      assert.deepEqual(s.publicKeySpki, key.publicKeySpki, uri);
    }
  } finally {
    process.chdir(cwd);
  }
  const abs = await openSigner(pathToFileURL(join(dir, 'ca', 'intermediate.key')).href);
  assert.deepEqual(abs.publicKeySpki, key.publicKeySpki);
  await rejectsWithCode(openSigner(`file://${join(dir, 'missing.key')}`), 'ERR_CONFIG', /cannot read key file .*missing\.key: ENOENT/);
  await rejectsWithCode(
    openSigner(`${pathToFileURL(join(dir, 'ca', 'intermediate.key')).href}?passphrase-file=${join(dir, 'nope')}`),
    'ERR_CONFIG',
    /cannot read passphrase file/,
  );
});
