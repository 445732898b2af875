import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash } from '../core/merkle.ts';
import { utf8 } from '../core/bytes.ts';
import { LogDb, packEntries, unpackEntries } from './sqlite-db.ts';

const identity = { origin: 'o', treeId: '1', publicKey: 'k', createdAt: 't' };
const entry = (s: string, keys: string[] = []) => ({ leafHash: leafHash(utf8(s)), body: utf8(s), integratedTime: 1700000000, indexKeys: keys });

test('deduplication is exact before, during and after the index follower, across reopen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-logdb-'));
  try {
    let db = new LogDb(dir);
    db.open(identity);
    assert.deepEqual(db.commit(0, [entry('a', ['sha256:aa']), entry('b'), entry('a')]).duplicates, [undefined, undefined, 0]);
    assert.equal(db.committedSize(), 2);
    // Not yet indexed: found through the in-memory map.
    assert.deepEqual(db.commit(2, [entry('b'), entry('c')]).duplicates, [1, undefined]);
    assert.deepEqual(db.searchIndex('sha256:aa', 10), [0]);
    assert.equal(db.indexBacklog, 3);
    assert.equal(db.indexStep(2), 2);
    assert.equal(db.indexBacklog, 1);
    assert.deepEqual(db.findByLeafHash([leafHash(utf8('a')), leafHash(utf8('c')), leafHash(utf8('zz'))]), [0, 2, undefined]);
    assert.throws(() => db.commit(1, [entry('d')]), /commit at 1/);
    db.close();
    // Reopen with an unindexed tail: still exact.
    db = new LogDb(dir);
    db.open(identity);
    assert.deepEqual(db.commit(3, [entry('c'), entry('a'), entry('d')]).duplicates, [2, 0, undefined]);
    while (db.indexStep() > 0);
    assert.equal(db.indexBacklog, 0);
    assert.deepEqual(db.commit(4, [entry('d')]).duplicates, [3]);
    assert.deepEqual(db.searchIndex('sha256:aa', 10), [0]);
    db.close();
    const ro = new LogDb(dir, true);
    assert.equal(ro.open(identity).origin, 'o');
    assert.equal(ro.readEntries(0, 10).length, 4);
    ro.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packed commit messages round-trip', () => {
  const es = [entry('x', ['k1', 'k2']), entry(''), entry('long'.repeat(1000))];
  const back = unpackEntries(packEntries(es));
  assert.equal(back.length, 3);
  back.forEach((b, i) => {
    assert.deepEqual([...b.leafHash], [...es[i]!.leafHash]);
    assert.deepEqual([...b.body], [...es[i]!.body]);
    assert.deepEqual(b.indexKeys, es[i]!.indexKeys);
    assert.equal(b.integratedTime, 1700000000);
  });
});
