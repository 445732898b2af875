// Both file hashers against node:crypto over the same bytes: sizes around the 1 MiB read size
// (the double-buffered reader's edge cases), an empty file, a pipe, and early stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { hashFile, hashFileAsync } from './hash-file.ts';

const MiB = 1 << 20;

test('hashFile and hashFileAsync agree with node:crypto at every chunk boundary', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-hash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 12345]) {
    const data = randomBytes(size);
    const file = join(dir, `f${size}`);
    writeFileSync(file, data);
    const want = createHash('sha256').update(data).digest('hex');
    const progress: number[] = [];
    const a = await hashFileAsync(file, 'sha256', (done) => progress.push(done));
    assert.equal(Buffer.from(a.digest).toString('hex'), want, `async, ${size} bytes`);
    assert.equal(a.size, size);
    assert.equal(progress.at(-1), size, 'the last progress report is the whole file');
    assert.equal(Buffer.from(hashFile(file).digest).toString('hex'), want, `sync, ${size} bytes`);
  }
  const data = readFileSync(join(dir, `f${3 * MiB + 12345}`));
  const sha512 = await hashFileAsync(join(dir, `f${3 * MiB + 12345}`), 'sha512');
  assert.equal(Buffer.from(sha512.digest).toString('hex'), createHash('sha512').update(data).digest('hex'));
});

test('hashFileAsync reads a pipe (what `-` for stdin hands it) to its end', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-hash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const data = randomBytes(3 * MiB + 7);
  const writer = spawn('sh', ['-c', 'cat > "$0"', fifo], { stdio: ['pipe', 'ignore', 'ignore'] });
  writer.stdin.end(data);
  const got = await hashFileAsync(fifo);
  assert.equal(Buffer.from(got.digest).toString('hex'), createHash('sha256').update(data).digest('hex'));
  assert.equal(got.size, data.length);
});

test('missing files and early stops are ERR_IO or the abort, with the file closed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-hash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await rejectsWithCode(hashFileAsync(join(dir, 'nope')), 'ERR_IO', /ENOENT/);
  throwsWithCode(() => hashFile(join(dir, 'nope')), 'ERR_IO', /ENOENT/);
  await rejectsWithCode(hashFileAsync(dir), 'ERR_IO', /cannot read/);
  const file = join(dir, 'big');
  writeFileSync(file, randomBytes(4 * MiB));
  const stop = new AbortController();
  stop.abort();
  await assert.rejects(hashFileAsync(file, 'sha256', undefined, stop.signal), { name: 'AbortError' });
});
