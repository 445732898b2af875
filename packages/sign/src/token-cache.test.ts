// The login cache holds a bearer token: 0600 on every write whatever was there before, and a
// symlink at its name is replaced, never written through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCachedToken, writeCachedToken } from './token-cache.ts';

const jwt = (exp: number) => `e30.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.c2ln`;

test('writeCachedToken: 0600 over a world-readable file, under any umask; a planted symlink is replaced', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-token-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { WAXSEAL_CONFIG_DIR: join(dir, 'config') };
  mkdirSync(env.WAXSEAL_CONFIG_DIR);
  const cache = join(env.WAXSEAL_CONFIG_DIR, 'token.json');
  writeFileSync(cache, '{}');
  chmodSync(cache, 0o644);
  const old = process.umask(0);
  try {
    const token = jwt(Math.floor(Date.now() / 1000) + 600);
    assert.equal(writeCachedToken(token, env), cache);
    assert.equal(statSync(cache).mode & 0o777, 0o600);
    assert.equal(readCachedToken(env), token);

    const elsewhere = join(dir, 'elsewhere.txt');
    writeFileSync(elsewhere, 'not yours');
    rmSync(cache);
    symlinkSync(elsewhere, cache);
    writeCachedToken(token, env);
    assert.equal(readFileSync(elsewhere, 'utf8'), 'not yours', 'the link target is untouched');
    assert.ok(lstatSync(cache).isFile(), 'the link itself was replaced by the cache file');
    assert.equal(statSync(cache).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(env.WAXSEAL_CONFIG_DIR), ['token.json'], 'no temporary file left behind');
  } finally {
    process.umask(old);
  }
});

test('readCachedToken: an expired or nearly expired token is not handed out', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-token-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { WAXSEAL_CONFIG_DIR: dir };
  writeCachedToken(jwt(Math.floor(Date.now() / 1000) + 10), env);
  assert.equal(readCachedToken(env), undefined);
});
