// A data directory written before the engine lost its Rekor fields (schema 1: integrated_time
// INTEGER, index_keys '\n'-joined TEXT, note_v1 TEXT, index.db keyed by TEXT) still opens: read
// only as it is (fsck), and for writing after the in-place upgrade, with the same entries,
// metadata bytes, checkpoints and search results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigner } from '../../keys/src/memory.ts';
import { utf8 } from '../../core/src/bytes.ts';
import { TransparencyLog } from './log.ts';
import { SqliteFileStorage } from './sqlite.ts';
import { fsckLog } from './fsck.ts';
import { IndexFollower, unpackKeys } from './sqlite-db.ts';

const signer = generateSigner('ed25519');
const dec = new TextDecoder();

/** Unix seconds, 8 bytes big-endian: the bytes schema 1's integer column reads back as. */
const seconds = (ms: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(Math.floor(ms / 1000)));
  return b;
};

const open = (dir: string) =>
  TransparencyLog.open({
    storage: new SqliteFileStorage(dir),
    signer,
    origin: 'log.example.test',
    params: { treeId: '7' },
    entryMetadata: seconds,
    checkpointExtra: async (tree) => utf8(`v1 note for ${tree.size}`),
    batchSize: 128,
    batchMaxDelayMs: 1,
    onFatal: () => {},
  });

/** Rewrites a data directory's databases exactly as schema 1 laid them out. */
function toSchema1(dir: string): void {
  const follower = new IndexFollower(dir);
  while (follower.step() > 0);
  follower.close();
  const db = new DatabaseSync(join(dir, 'log.db'));
  db.function('u64', (b: unknown) => Number(new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset, 8).getBigUint64(0)));
  db.function('keys_text', (b: unknown) =>
    unpackKeys(b as Uint8Array)
      .map((k) => dec.decode(k))
      .join('\n'),
  );
  db.function('text', (b: unknown) => dec.decode(b as Uint8Array));
  db.exec(`BEGIN;
    CREATE TABLE e1 (
      idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, body BLOB NOT NULL, integrated_time INTEGER NOT NULL, index_keys TEXT NOT NULL DEFAULT '');
    INSERT INTO e1 SELECT idx, leaf_hash, body, u64(metadata), keys_text(index_keys) FROM entries;
    DROP TABLE entries; ALTER TABLE e1 RENAME TO entries;
    CREATE TABLE c1 (
      size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, note_v1 TEXT NOT NULL, published_at INTEGER NOT NULL);
    INSERT INTO c1 SELECT size, root_hash, note, text(extra), published_at FROM checkpoints;
    DROP TABLE checkpoints; ALTER TABLE c1 RENAME TO checkpoints;
    DELETE FROM meta WHERE key = 'schema';
    COMMIT; VACUUM`);
  db.close();
  // index.db as schema 1 left it, with the follower 100 entries behind (those rows are indexed again from the TEXT keys).
  const idx = new DatabaseSync(join(dir, 'index.db'));
  idx.exec(`BEGIN;
    CREATE TABLE s1 (key TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
    INSERT INTO s1 SELECT CAST(key AS TEXT), idx FROM search_index WHERE idx < 200;
    DROP TABLE search_index; ALTER TABLE s1 RENAME TO search_index;
    DELETE FROM dedup WHERE idx >= 200;
    UPDATE meta SET value = '200' WHERE key = 'indexed';
    DELETE FROM meta WHERE key = 'schema';
    COMMIT`);
  idx.close();
}

test('a schema-1 data directory reads the same before and after the in-place upgrade', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-tlog-s1-'));
  // Closed in `finally` too, so a failed assertion does not leave threads running.
  const opened: TransparencyLog[] = [];
  const track = async (p: Promise<TransparencyLog>) => {
    const l = await p;
    opened.push(l);
    return l;
  };
  try {
    const log = await track(open(dir));
    const acked = await Promise.all(
      Array.from({ length: 300 }, (_, i) => log.add({ body: utf8(`e${i}`), indexKeys: [utf8(`k${i}`), utf8('all')] })),
    );
    const size = log.checkpoint.size;
    const root = log.checkpoint.rootHash;
    const entries = await log.storage.readEntries(0, size);
    const k5 = await log.storage.searchIndex(utf8('k5'), 10);
    const all = await log.storage.searchIndex(utf8('all'), 1000);
    await log.close();
    const cps = await (async () => {
      const s = new SqliteFileStorage(dir, { readOnly: true });
      await s.open({ origin: '', publicKey: '', createdAt: '', params: {} });
      const c = await s.listCheckpoints();
      await s.close();
      return c;
    })();
    assert.ok(cps.length >= 2);

    toSchema1(dir);
    const raw = new DatabaseSync(join(dir, 'log.db'), { readOnly: true });
    assert.deepEqual(
      { ...(raw.prepare('SELECT typeof(integrated_time) AS t, typeof(index_keys) AS k FROM entries LIMIT 1').get() as object) },
      {
        t: 'integer',
        k: 'text',
      },
    );
    raw.close();

    // Read only (fsck, backups): the old file as it is.
    const ro = new SqliteFileStorage(dir, { readOnly: true });
    const id = await ro.open({ origin: '', publicKey: '', createdAt: '', params: {} });
    assert.deepEqual(id.params, { treeId: '7' });
    assert.deepEqual(await ro.readEntries(0, size), entries);
    assert.deepEqual(await ro.listCheckpoints(), cps);
    await ro.close();
    const report = await fsckLog(dir);
    assert.deepEqual(report.errors, []);
    assert.equal(report.publishedSize, size);

    // Writable: upgraded in place, same answers, and it goes on.
    let log2 = await track(open(dir));
    assert.equal(log2.checkpoint.size, size);
    assert.deepEqual(log2.checkpoint.rootHash, root);
    assert.deepEqual(log2.checkpoint.extra, utf8(`v1 note for ${size}`));
    assert.deepEqual(await log2.storage.readEntries(0, size), entries);
    assert.deepEqual(await log2.storage.searchIndex(utf8('k5'), 10), k5);
    assert.deepEqual(await log2.storage.searchIndex(utf8('k250'), 10), [acked[250]!.index]);
    const dup = await log2.add({ body: utf8('e250') });
    assert.equal(dup.duplicate, true);
    assert.equal(dup.index, acked[250]!.index);
    assert.deepEqual(dup.metadata, acked[250]!.metadata);
    const fresh = await log2.add({ body: utf8('after upgrade'), indexKeys: [utf8('all')] });
    assert.equal(fresh.index, size);
    await log2.close();
    log2 = await track(open(dir));
    assert.deepEqual(await log2.storage.searchIndex(utf8('all'), 1000), [...all, size]);
    assert.deepEqual(await log2.storage.searchIndex(utf8('k299'), 10), [acked[299]!.index]);
    assert.deepEqual((await log2.entry(5))!.metadata, entries[5]!.metadata);
    await log2.close();

    const up = new DatabaseSync(join(dir, 'log.db'), { readOnly: true });
    assert.equal((up.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, '2');
    assert.deepEqual(
      (up.prepare('PRAGMA table_info(entries)').all() as { name: string }[]).map((c) => c.name),
      ['idx', 'leaf_hash', 'body', 'metadata', 'index_keys'],
    );
    up.close();
    assert.deepEqual((await fsckLog(dir)).errors, []);
  } finally {
    for (const l of opened) await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
