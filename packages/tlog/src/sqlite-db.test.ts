import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash } from '../../core/src/merkle.ts';
import { utf8 } from '../../core/src/bytes.ts';
import { LogDb, IndexFollower, packEntries, unpackEntries, unpackKeys } from './sqlite-db.ts';

const u = utf8;
const identity = { origin: 'o', publicKey: 'k', createdAt: 't', params: { treeId: '1' } };
const entry = (s: string, keys: string[] = []) => ({
  leafHash: leafHash(utf8(s)),
  body: utf8(s),
  metadata: utf8('meta'),
  indexKeys: keys.map(utf8),
});

test('deduplication is exact before, during and after the index follower, across reopen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-logdb-'));
  try {
    let db = new LogDb(dir);
    db.open(identity);
    assert.deepEqual(db.commit(0, [entry('a', ['sha256:aa']), entry('b'), entry('a')]).duplicates, [undefined, undefined, 0]);
    assert.equal(db.committedSize(), 2);
    // Not yet indexed: found through the in-memory map.
    assert.deepEqual(db.commit(2, [entry('b'), entry('c')]).duplicates, [1, undefined]);
    assert.deepEqual(db.searchIndex(u('sha256:aa'), 10), [0]);
    assert.equal(db.indexBacklog, 3);
    assert.equal(db.indexStep(2), 2);
    assert.equal(db.indexBacklog, 1);
    assert.deepEqual(db.findByLeafHash([leafHash(utf8('a')), leafHash(utf8('c')), leafHash(utf8('zz'))]), [0, 2, undefined]);
    throwsWithCode(() => db.commit(1, [entry('d')]), 'ERR_LOG_INCONSISTENT', /commit at 1/);
    db.close();
    // Reopen with an unindexed tail: still exact.
    db = new LogDb(dir);
    db.open(identity);
    assert.deepEqual(db.commit(3, [entry('c'), entry('a'), entry('d')]).duplicates, [2, 0, undefined]);
    while (db.indexStep() > 0);
    assert.equal(db.indexBacklog, 0);
    assert.deepEqual(db.commit(4, [entry('d')]).duplicates, [3]);
    assert.deepEqual(db.searchIndex(u('sha256:aa'), 10), [0]);
    db.close();
    const ro = new LogDb(dir, true);
    assert.equal(ro.open(identity).origin, 'o');
    assert.equal(ro.readEntries(0, 10).length, 4);
    ro.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the follower on its own connection: commits stay exact while it runs, and a stale or missing index.db is rebuilt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-logidx-'));
  try {
    let db = new LogDb(dir);
    db.open(identity);
    const follower = new IndexFollower(dir);
    db.commit(
      0,
      Array.from({ length: 50 }, (_, i) => entry(`e${i}`, [`k${i % 5}`])),
    );
    assert.equal(follower.step(20), 20);
    assert.equal(db.indexBacklog, 30);
    // Lookups below the cursor come from index.db, above it from memory; both exact.
    assert.deepEqual(db.commit(50, [entry('e3'), entry('e40'), entry('new')]).duplicates, [3, 40, undefined]);
    assert.deepEqual(db.searchIndex(u('k2'), 100), [2, 7, 12, 17, 22, 27, 32, 37, 42, 47]);
    assert.equal(follower.step(), 31);
    assert.equal(follower.step(), 0);
    assert.equal(db.indexBacklog, 0);
    assert.deepEqual(db.findByLeafHash([leafHash(utf8('e49')), leafHash(utf8('new')), leafHash(utf8('nope'))]), [49, 50, undefined]);
    assert.deepEqual(db.searchIndex(u('k2'), 3), [2, 7, 12]);
    follower.close();
    db.close();
    // An index.db that belongs to another log is emptied and rebuilt from the entries.
    const idx = new DatabaseSync(join(dir, 'index.db'));
    idx.exec("UPDATE meta SET value = 'someone else' WHERE key = 'owner'");
    idx.close();
    db = new LogDb(dir);
    db.open(identity);
    assert.equal(db.indexBacklog, 51);
    assert.deepEqual(db.commit(51, [entry('e0'), entry('e50')]).duplicates, [0, undefined]);
    assert.deepEqual(db.searchIndex(u('k4'), 2), [4, 9]);
    while (db.indexStep() > 0);
    assert.equal(db.indexBacklog, 0);
    db.close();
    // A missing index.db is recreated.
    for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) rmSync(join(dir, f), { force: true });
    db = new LogDb(dir);
    db.open(identity);
    assert.ok(existsSync(join(dir, 'index.db')));
    assert.equal(db.indexBacklog, 52);
    assert.deepEqual(db.commit(52, [entry('e50'), entry('e1')]).duplicates, [51, 1]);
    db.close();
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
    assert.deepEqual(
      unpackKeys(b.keys).map((k) => [...k]),
      es[i]!.indexKeys.map((k) => [...k]),
    );
    assert.deepEqual([...b.metadata], [...utf8('meta')]);
  });
});
