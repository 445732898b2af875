import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileMode, throwsWithCode, useTempDir } from '@waxseal/testkit';
import { checkSecretFileTarget, writeSecretFile } from './secret-file.ts';

// umask 000: the file's mode must not depend on the caller's umask.
const tmp = useTempDir('wx-secret-', { umask: 0o000 });

let n = 0;
const fresh = () => {
  const d = join(tmp.dir, `case-${n++}`);
  mkdirSync(d);
  return d;
};

test('writes a new file of mode 0600 with exactly the data, and leaves no temporary file', () => {
  const d = fresh();
  writeSecretFile(join(d, 'a.key'), 'secret text\n');
  assert.equal(readFileSync(join(d, 'a.key'), 'utf8'), 'secret text\n');
  assert.equal(fileMode(join(d, 'a.key')), 0o600);
  const bytes = new Uint8Array([0, 1, 2, 255]);
  writeSecretFile(join(d, 'b.bin'), bytes);
  assert.deepEqual(new Uint8Array(readFileSync(join(d, 'b.bin'))), bytes);
  assert.equal(fileMode(join(d, 'b.bin')), 0o600);
  assert.deepEqual(readdirSync(d).sort(), ['a.key', 'b.bin']);
});

test('an existing file is refused without force and left as it was', () => {
  const d = fresh();
  const p = join(d, 'root.key');
  writeFileSync(p, 'old', { mode: 0o644 });
  throwsWithCode(() => writeSecretFile(p, 'new'), 'ERR_CONFLICT', /exists/);
  assert.equal(readFileSync(p, 'utf8'), 'old');
  assert.equal(fileMode(p), 0o644);
  assert.deepEqual(readdirSync(d), ['root.key']);
});

test('with force, an existing 0644 file is replaced by a new 0600 file (other names of the old one keep the old bytes)', () => {
  const d = fresh();
  const p = join(d, 'root.key');
  writeFileSync(p, 'old', { mode: 0o644 });
  linkSync(p, join(d, 'other-name'));
  writeSecretFile(p, 'new', { force: true });
  assert.equal(readFileSync(p, 'utf8'), 'new');
  assert.equal(fileMode(p), 0o600);
  // A new file, not the old one rewritten: a hard link to the old file never sees the secret.
  assert.equal(readFileSync(join(d, 'other-name'), 'utf8'), 'old');
  assert.deepEqual(readdirSync(d).sort(), ['other-name', 'root.key']);
});

test('a symlink at the path is refused, with or without force, and its target is untouched', () => {
  const d = fresh();
  const target = join(d, 'elsewhere');
  writeFileSync(target, 'victim', { mode: 0o644 });
  const p = join(d, 'root.key');
  symlinkSync(target, p);
  for (const force of [false, true]) {
    throwsWithCode(() => writeSecretFile(p, 'secret', { force }), 'ERR_CONFLICT', /symbolic link/);
    assert.equal(readFileSync(target, 'utf8'), 'victim');
    assert.equal(fileMode(target), 0o644);
    assert.ok(lstatSync(p).isSymbolicLink());
  }
  // A dangling link is refused too (following it would create the file where it points).
  const dangling = join(d, 'dangling.key');
  symlinkSync(join(d, 'not-yet'), dangling);
  throwsWithCode(() => writeSecretFile(dangling, 'secret', { force: true }), 'ERR_CONFLICT', /symbolic link/);
  assert.deepEqual(readdirSync(d).sort(), ['dangling.key', 'elsewhere', 'root.key']);
});

test('a folder at the path is refused, a missing folder is an I/O error', () => {
  const d = fresh();
  mkdirSync(join(d, 'x.key'));
  throwsWithCode(() => writeSecretFile(join(d, 'x.key'), 's', { force: true }), 'ERR_CONFLICT', /not a regular file/);
  throwsWithCode(() => writeSecretFile(join(d, 'missing', 'x.key'), 's'), 'ERR_IO');
});

test('checkSecretFileTarget accepts a free path and refuses what writeSecretFile would refuse', () => {
  const d = fresh();
  checkSecretFileTarget(join(d, 'free.key'));
  writeFileSync(join(d, 'taken.key'), 'x');
  throwsWithCode(() => checkSecretFileTarget(join(d, 'taken.key')), 'ERR_CONFLICT');
  checkSecretFileTarget(join(d, 'taken.key'), { force: true });
  symlinkSync(join(d, 'taken.key'), join(d, 'link.key'));
  throwsWithCode(() => checkSecretFileTarget(join(d, 'link.key'), { force: true }), 'ERR_CONFLICT');
});
