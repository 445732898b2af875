import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import fc from 'fast-check';
import {
  leafHash,
  rootFromLeafHashes,
  inclusionProof,
  consistencyProof,
  verifyConsistency,
  verifyInclusion,
} from '../../core/src/merkle.ts';
import { TileHashTree, type TileWrite } from './tree.ts';
import { tilesForSize, tilePath, parseTilePath, encodeTileIndex, encodeEntryBundle, decodeEntryBundle, tileWidthAt } from './tiles.ts';

function memoryTiles(): {
  store: Map<string, Uint8Array>;
  write(w: TileWrite[]): void;
  reader(l: number, i: number): Promise<Uint8Array | undefined>;
} {
  const store = new Map<string, Uint8Array>();
  return {
    store,
    write(ws) {
      for (const w of ws) store.set(`${w.level}/${w.index}`, w.data);
    },
    reader: async (l, i) => store.get(`${l}/${i}`),
  };
}

const leaves = (n: number, seed = 0) => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`entry ${seed}/${i}`)));

test('tile index encoding matches C2SP examples', () => {
  assert.equal(encodeTileIndex(1234067), 'x001/x234/067');
  assert.equal(encodeTileIndex(0), '000');
  assert.equal(encodeTileIndex(1000), 'x001/000');
  assert.equal(tilePath({ level: 0, index: 1234067, width: 256 }), 'tile/0/x001/x234/067');
  assert.equal(tilePath({ level: 2, index: 5, width: 17 }), 'tile/2/005.p/17');
  assert.equal(tilePath({ level: -1, index: 5, width: 256 }), 'tile/entries/005');
  assert.deepEqual(parseTilePath('0/x001/x234/067'), { level: 0, index: 1234067, width: 256 });
  assert.deepEqual(parseTilePath('entries/x001/000.p/255'), { level: -1, index: 1000, width: 255 });
  for (const bad of [
    '0/1',
    '0/0001',
    '0/x000/001',
    '0/001.p/0',
    '0/001.p/256',
    '0/001.p/01',
    '64/000',
    '00/000',
    'x/000',
    '0/',
    '0/abc',
    '0/001/',
    '-1/000',
    'entries',
    '0/x001',
    '0/001.p',
    '0/x1000/000',
  ]) {
    throwsWithCode(() => parseTilePath(bad), 'ERR_NOT_FOUND', /tile path/, bad);
  }
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: -1, max: 63 }),
      fc.integer({ min: 1, max: 256 }),
      (index, level, width) => {
        const t = { level, index, width };
        assert.deepEqual(parseTilePath(tilePath(t).slice('tile/'.length)), t);
      },
    ),
  );
});

test('entry bundles round-trip and reject truncation', () => {
  const entries = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7)];
  const b = encodeEntryBundle(entries);
  assert.deepEqual(
    decodeEntryBundle(b).map((e) => [...e]),
    entries.map((e) => [...e]),
  );
  throwsWithCode(() => decodeEntryBundle(b.subarray(0, b.length - 1)), 'ERR_INVALID_INPUT', /truncated/);
  throwsWithCode(() => encodeEntryBundle([new Uint8Array(70000)]), 'ERR_INVALID_INPUT', /too large/);
});

test('tile tree roots and proofs equal the reference RFC 6962 computation', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 5 }), async (chunks) => {
      const mem = memoryTiles();
      const tree = new TileHashTree(mem.reader, { cacheTiles: 2 });
      const all: Uint8Array[] = [];
      for (const [ci, c] of chunks.entries()) {
        const ls = leaves(c, ci);
        all.push(...ls);
        mem.write(tree.append(ls));
      }
      const n = all.length;
      assert.equal(tree.size, n);
      assert.deepEqual(await tree.root(), rootFromLeafHashes(all));
      for (const m of [1, Math.floor(n / 2), n - 1, n].filter((x) => x >= 1 && x <= n)) {
        assert.deepEqual(await tree.root(m), rootFromLeafHashes(all.slice(0, m)));
        assert.deepEqual(await tree.consistencyProof(m, n), consistencyProof(m, all));
        const i = (m * 7919) % n;
        assert.deepEqual(await tree.inclusionProof(i, n), inclusionProof(i, all));
      }
      // Stored tiles are exactly the tiles of the final tree.
      for (const t of tilesForSize(n)) {
        const data = mem.store.get(`${t.level}/${t.index}`);
        assert.ok(data, `tile ${t.level}/${t.index}`);
        assert.equal(data.length, t.width * 32);
      }
      // A fresh tree positioned from stored tiles at an older size continues identically.
      const half = Math.floor(n / 2);
      const reopened = new TileHashTree(mem.reader);
      await reopened.load(half);
      assert.deepEqual(await reopened.root(), rootFromLeafHashes(all.slice(0, half)));
      reopened.append(all.slice(half));
      assert.deepEqual(await reopened.root(), rootFromLeafHashes(all));
    }),
    { numRuns: 25 },
  );
});

test('proofs for a large tree verify with the core verifier (multi-level tiles)', async () => {
  const mem = memoryTiles();
  const tree = new TileHashTree(mem.reader, { cacheTiles: 8 });
  const n = 256 * 256 + 300;
  const all = leaves(n);
  for (let i = 0; i < n; i += 4000) mem.write(tree.append(all.slice(i, i + 4000)));
  assert.ok(mem.store.has('2/0'), 'a level-2 partial tile exists');
  assert.equal(tileWidthAt(1, 0, n), 256);
  const root = await tree.root();
  for (const i of [0, 1, 255, 256, 65535, 65536, n - 1]) {
    assert.ok(verifyInclusion(i, n, all[i]!, await tree.inclusionProof(i), root));
  }
  for (const m of [1, 256, 257, 65536, 70000 > n ? n : 65600]) {
    const oldRoot = await tree.root(m);
    assert.ok(verifyConsistency(m, n, oldRoot, root, await tree.consistencyProof(m)));
  }
  await rejectsWithCode(tree.root(n + 1), 'ERR_INVALID_INPUT', /beyond/);
});
