// The mirrorFS reader: archives written by the real GNU tar in its three formats (GNU long
// names, PAX headers, ustar name prefixes: a TUF target path is over 100 characters), the
// `repository/` prefix stripped, and bad archives refused (path traversal, bad checksum,
// truncation, not gzip, gzip bombs, too many entries).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { cleanArchivePath, readMirrorFs, readTar } from '../src/engine-tar.ts';

const hasTar = spawnSync('tar', ['--version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'wx-engine-tar-'));
after(() => rmSync(work, { recursive: true, force: true }));

const LONG = `targets/${'a'.repeat(64)}.trusted_root.json`;

/** One ustar header block for `name` (≤ 100 chars) of `size` bytes and `type`. */
function header(name: string, size: number, type = '0', fixChecksum = true): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(new TextEncoder().encode(s), off);
  put(name, 0);
  put('0000644\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(`${size.toString(8).padStart(11, '0')}\0`, 124);
  put('00000000000\0', 136);
  put(type, 156);
  put('ustar\0', 257);
  put('00', 263);
  put('        ', 148);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${(fixChecksum ? sum : sum + 1).toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function entry(name: string, data: string, type = '0'): Uint8Array {
  const body = new TextEncoder().encode(data);
  const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
  padded.set(body);
  return new Uint8Array([...header(name, body.length, type), ...padded]);
}

const end = () => new Uint8Array(1024);
const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

describe('mirrorFS archives from GNU tar', { skip: hasTar ? false : 'tar is not installed' }, () => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'repository', 'targets'), { recursive: true });
  writeFileSync(join(src, 'repository', '1.root.json'), '{"root": 1}');
  writeFileSync(join(src, 'repository', LONG), '{"trusted": true}');
  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    test(`${format} format: files by path, repository/ stripped`, async () => {
      const out = join(work, `${format}.tgz`);
      const r = spawnSync('tar', [`--format=${format}`, '-czf', out, '-C', src, 'repository']);
      assert.equal(r.status, 0, r.stderr.toString());
      const files = await readMirrorFs(new Uint8Array(readFileSync(out)));
      assert.deepEqual([...files.keys()].sort(), ['1.root.json', LONG]);
      assert.equal(new TextDecoder().decode(files.get(LONG)), '{"trusted": true}');
    });
  }
});

describe('bad archives are refused', () => {
  test('path traversal refuses the archive', () => {
    assert.equal(cleanArchivePath('./repository//a/./b'), 'repository/a/b');
    assert.equal(cleanArchivePath('/repository/a'), 'repository/a');
    assert.equal(cleanArchivePath('repository/../../etc/passwd'), null);
    assert.throws(() => readTar(cat(entry('repository/../../x', 'evil'), end())), /outside the archive \(path traversal\)/);
    // Through a GNU long name too.
    assert.throws(() => readTar(cat(entry('././@LongLink', '../evil\0', 'L'), entry('short', 'x'), end())), /path traversal/);
  });

  test('checksum, truncation, size fields', () => {
    assert.throws(() => readTar(cat(header('a', 0, '0', false), end())), /bad header checksum/);
    const e = entry('a', 'x'.repeat(100));
    assert.throws(() => readTar(e.subarray(0, 600)), /truncated/);
    const bogus = header('a', 0);
    bogus.set(new TextEncoder().encode('9x\0'), 124);
    assert.throws(() => readTar(bogus), /(checksum|not an octal number)/);
  });

  test('entries are counted; links and directories are skipped', () => {
    const many = cat(...Array.from({ length: 5 }, (_, i) => entry(`f${i}`, 'x')), end());
    assert.equal(readTar(many).size, 5);
    assert.throws(() => readTar(many, 4), /more than 4 entries/);
    const mixed = cat(entry('dir/', '', '5'), entry('link', '', '2'), entry('dir/file', 'y'), end());
    assert.deepEqual([...readTar(mixed).keys()], ['dir/file']);
  });

  test('not gzip, corrupt gzip, a gzip bomb, an oversized archive', async () => {
    await assert.rejects(readMirrorFs(new TextEncoder().encode('not gzip at all')), /not gzip data/);
    const gz = gzipSync(cat(entry('a', 'x'), end()));
    await assert.rejects(readMirrorFs(gz.subarray(0, gz.length - 12)), /cannot gunzip/);
    const bomb = gzipSync(new Uint8Array(4 << 20));
    assert.ok(bomb.length < 8192);
    await assert.rejects(readMirrorFs(bomb, 'repository/', { maxBytes: 1 << 20 }), /uncompresses to more than 1048576 bytes/);
    await assert.rejects(readMirrorFs(gz, 'repository/', { maxCompressedBytes: 10 }), /larger than 10 bytes/);
  });

  test('files outside repository/ are ignored when the archive has that folder; kept when it has not', async () => {
    const withPrefix = gzipSync(cat(entry('repository/a', '1'), entry('other/b', '2'), end()));
    assert.deepEqual([...(await readMirrorFs(withPrefix)).keys()], ['a']);
    const flat = gzipSync(cat(entry('a', '1'), entry('targets/t', '2'), end()));
    assert.deepEqual([...(await readMirrorFs(flat)).keys()], ['a', 'targets/t']);
  });
});
