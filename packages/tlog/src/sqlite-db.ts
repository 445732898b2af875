// The SQLite half of the embedded storage driver, synchronous (node:sqlite). It runs on its own
// worker thread in a serving log (sqlite-worker.ts), so fsyncs never block the event loop, or
// inline for tools (fsck) and tests.
//
// log.db (the record; every commit fsync'd):
//   entries(idx PK, leaf_hash, body, integrated_time, index_keys)   appended in index order
//   checkpoints(size PK, root_hash, note, note_v1, published_at)
//   meta(key PK, value)                                               log identity
// index.db (derived from entries; rebuilt from them when missing or stale):
//   dedup(leaf_hash PK, idx)                                          leaf hash -> index
//   search_index(key, idx)                                            Rekor v1 search keys
//   meta(key PK, value)                                               identity, `indexed` cursor
//
// Only `entries` is written by the fsync'd commit: its rows append at the end of the rowid
// B-tree, so a batch dirties a handful of pages. The two hash-keyed indexes (random B-tree
// inserts, many pages per batch) are filled afterwards by a follower (IndexFollower) in
// non-fsync'd transactions, as Tessera's antispam follower does. They live in a database of
// their own so that the follower, on its own thread in a server (index-worker.ts), never holds
// the write lock a commit needs. Entries committed but not yet indexed are deduplicated through
// an in-memory map, pruned as the follower's cursor advances. A crash loses at most unfsync'd
// follower work, which is redone from `entries`: deduplication stays exact.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import type { CommitResult, LogIdentity, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';

interface CheckpointRow {
  size: number;
  root_hash: unknown;
  note: string;
  note_v1: string;
  published_at: number;
}

function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new WaxsealError('ERR_LOG_INCONSISTENT', 'database returned a non-blob value');
}

const key = (h: Uint8Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('latin1');

export class LogDb {
  readonly #dir: string;
  readonly #readOnly: boolean;
  #db: DatabaseSync | undefined;
  #lock: DatabaseSync | undefined;
  #st: Record<string, StatementSync> = {};
  #committed = 0;
  #indexed = 0;
  /** index.db (absent in read-only mode: everything counts as not yet indexed). */
  #idx: DatabaseSync | undefined;
  #ist: { cursor?: StatementSync; byLeaf?: StatementSync; search?: StatementSync } = {};
  /** The inline follower (indexStep). */
  #follower: IndexFollower | undefined;
  /** Leaf hash -> index for entries in [indexed, committed), and their keys in index order. */
  readonly #recent = new Map<string, number>();
  #recentOrder: string[] = [];
  #recentHead = 0;

  constructor(dataDir: string, readOnly = false) {
    this.#dir = dataDir;
    this.#readOnly = readOnly;
  }

  get #d(): DatabaseSync {
    if (!this.#db) throw new WaxsealError('ERR_INTERNAL', 'log database is not open');
    return this.#db;
  }

  open(identity: LogIdentity): LogIdentity {
    const path = join(this.#dir, 'log.db');
    if (this.#readOnly) {
      if (!existsSync(path)) throw new WaxsealError('ERR_NOT_FOUND', `no log database in ${this.#dir}`);
      this.#db = new DatabaseSync(path, { readOnly: true });
      this.#prepare();
      this.#loadCursors();
      return this.#identity() ?? identity;
    }
    mkdirSync(this.#dir, { recursive: true });
    // Single writer: a second process opening the same directory fails instead of forking it.
    this.#lock = new DatabaseSync(join(this.#dir, 'lock.db'));
    try {
      this.#lock.exec('PRAGMA busy_timeout=0; BEGIN EXCLUSIVE');
    } catch (e) {
      this.#lock.close();
      this.#lock = undefined;
      throw new WaxsealError('ERR_CONFIG', `log data directory ${this.#dir} is in use by another process`, { cause: e });
    }
    const db = new DatabaseSync(path);
    this.#db = db;
    db.exec(`
      PRAGMA journal_mode=WAL;
      PRAGMA synchronous=FULL;
      PRAGMA cache_size=-65536;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS entries (
        idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, body BLOB NOT NULL, integrated_time INTEGER NOT NULL, index_keys TEXT NOT NULL DEFAULT '');
      CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, note_v1 TEXT NOT NULL, published_at INTEGER NOT NULL);
    `);
    this.#prepare();
    const existing = this.#identity();
    let result = identity;
    if (existing) {
      for (const k of ['origin', 'treeId', 'publicKey'] as const) {
        if (existing[k] !== identity[k]) {
          throw new WaxsealError(
            'ERR_CONFIG',
            `log data directory ${this.#dir} holds a log with a different ${k} (${JSON.stringify(existing[k]).slice(0, 80)})`,
          );
        }
      }
      result = existing;
    } else {
      db.exec('BEGIN IMMEDIATE');
      for (const [k, v] of Object.entries(identity)) this.#st.putMeta!.run(k, v);
      db.exec('COMMIT');
    }
    this.#committed = this.#size();
    this.#openIndex(result);
    this.#loadCursors();
    return result;
  }

  /** Opens index.db, emptying it when it belongs to another log or runs ahead of this one. */
  #openIndex(identity: LogIdentity): void {
    const idx = new DatabaseSync(join(this.#dir, 'index.db'));
    this.#idx = idx;
    idx.exec(INDEX_SCHEMA);
    const get = idx.prepare('SELECT value FROM meta WHERE key = ?');
    const owner = `${identity.origin}\n${identity.treeId}\n${identity.publicKey}`;
    const stored = (get.get('owner') as { value: string } | undefined)?.value;
    const cursor = Number((get.get('indexed') as { value: string } | undefined)?.value ?? 0);
    if (stored !== owner || !(cursor <= this.#committed)) {
      idx.exec('BEGIN IMMEDIATE; DELETE FROM dedup; DELETE FROM search_index; DELETE FROM meta');
      idx.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('owner', owner);
      idx.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('indexed', '0');
      idx.exec('COMMIT');
    }
    this.#ist = {
      cursor: get,
      byLeaf: idx.prepare('SELECT idx FROM dedup WHERE leaf_hash = ?'),
      search: idx.prepare('SELECT idx FROM search_index WHERE key = ? ORDER BY idx LIMIT ?'),
    };
  }

  /** The follower's cursor: entries below it are in index.db (0 without an index). */
  #readCursor(): number {
    const v = this.#ist.cursor ? (this.#ist.cursor.get('indexed') as { value: string } | undefined)?.value : undefined;
    return Math.min(Number(v ?? 0), this.#committed);
  }

  /** Committed size, follower cursor, and the not-yet-indexed leaf hashes. */
  #loadCursors(): void {
    this.#committed = this.#size();
    this.#indexed = this.#readCursor();
    for (const r of this.#st.leafRange!.all(this.#indexed, this.#committed) as { idx: number; leaf_hash: unknown }[]) {
      this.#remember(key(bytes(r.leaf_hash)), Number(r.idx));
    }
  }

  #remember(k: string, idx: number): void {
    this.#recent.set(k, idx);
    this.#recentOrder.push(k);
  }

  /** Forgets the in-memory entries the follower has indexed (their rows are now visible). */
  #prune(): void {
    const cursor = this.#readCursor();
    if (cursor <= this.#indexed) return;
    const drop = cursor - this.#indexed;
    for (let i = 0; i < drop; i++) this.#recent.delete(this.#recentOrder[this.#recentHead + i]!);
    this.#recentHead += drop;
    if (this.#recentHead > 4096 && this.#recentHead * 2 > this.#recentOrder.length) {
      this.#recentOrder = this.#recentOrder.slice(this.#recentHead);
      this.#recentHead = 0;
    }
    this.#indexed = cursor;
  }

  #identity(): LogIdentity | undefined {
    const rows = this.#d.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[];
    if (rows.length === 0) return undefined;
    const m = Object.fromEntries(rows.map((r) => [r.key, r.value]));
    return { origin: m.origin ?? '', treeId: m.treeId ?? '', publicKey: m.publicKey ?? '', createdAt: m.createdAt ?? '' };
  }

  #prepare(): void {
    const db = this.#d;
    this.#st = {
      size: db.prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM entries'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      range: db.prepare('SELECT idx, leaf_hash, body, integrated_time FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      leafRange: db.prepare('SELECT idx, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      latest: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size DESC LIMIT 1'),
      allCps: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size'),
      keysRange: db.prepare('SELECT idx, index_keys FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      ...(this.#readOnly
        ? {}
        : {
            putMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
            insert: db.prepare('INSERT INTO entries (idx, leaf_hash, body, integrated_time, index_keys) VALUES (?, ?, ?, ?, ?)'),
            putCp: db.prepare('INSERT OR REPLACE INTO checkpoints (size, root_hash, note, note_v1, published_at) VALUES (?, ?, ?, ?, ?)'),
          }),
    };
  }

  #size(): number {
    return Number((this.#st.size!.get() as { n: number | bigint }).n);
  }

  committedSize(): number {
    return this.#committed;
  }

  #lookup(h: Uint8Array): number | undefined {
    const recent = this.#recent.get(key(h));
    if (recent !== undefined) return recent;
    const r = this.#ist.byLeaf?.get(h) as { idx: number | bigint } | undefined;
    return r === undefined ? undefined : Number(r.idx);
  }

  /** Appends the entries not already in the log, in one fsync'd transaction (the "commit"). */
  commit(first: number, entries: readonly NewEntry[]): CommitResult {
    const db = this.#d;
    if (first !== this.#committed)
      throw new WaxsealError('ERR_LOG_INCONSISTENT', `commit at ${first} but the log holds ${this.#committed} entries`);
    const duplicates: (number | undefined)[] = [];
    const added = new Map<string, number>();
    this.#prune();
    db.exec('BEGIN IMMEDIATE');
    try {
      // Checked again inside the transaction: the database, not this process, is the authority.
      const size = this.#size();
      if (size !== first) throw new WaxsealError('ERR_LOG_INCONSISTENT', `commit at ${first} but the log holds ${size} entries`);
      let i = first;
      for (const e of entries) {
        const k = key(e.leafHash);
        const existing = added.get(k) ?? this.#lookup(e.leafHash);
        duplicates.push(existing);
        if (existing !== undefined) continue;
        this.#st.insert!.run(i, e.leafHash, e.body, e.integratedTime, (e.indexKeys ?? []).join('\n'));
        added.set(k, i);
        i++;
      }
      // synchronous=FULL: COMMIT returns after the WAL is fsync'd.
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `log commit failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    for (const [k, idx] of added) this.#remember(k, idx);
    this.#committed += added.size;
    return { duplicates };
  }

  /** Committed entries the follower has not indexed yet. */
  get indexBacklog(): number {
    return this.#committed - this.#readCursor();
  }

  /** One follower step on this thread (tools, tests; a server runs index-worker.ts instead). */
  indexStep(max = INDEX_STEP_MAX): number {
    if (this.#readOnly) return 0;
    this.#follower ??= new IndexFollower(this.#dir);
    const n = this.#follower.step(max);
    this.#prune();
    return n;
  }

  findByLeafHash(hashes: readonly Uint8Array[]): (number | undefined)[] {
    this.#prune();
    return hashes.map((h) => {
      const i = this.#lookup(h);
      return i !== undefined && i < this.#committed ? i : undefined;
    });
  }

  readEntries(start: number, end: number): StoredEntry[] {
    return (this.#st.range!.all(start, end) as { idx: number; leaf_hash: unknown; body: unknown; integrated_time: number }[]).map((r) => ({
      index: Number(r.idx),
      leafHash: bytes(r.leaf_hash),
      body: bytes(r.body),
      integratedTime: Number(r.integrated_time),
    }));
  }

  /** Search keys of entries not yet indexed are found too (they are few: the follower's lag). */
  searchIndex(k: string, limit: number): number[] {
    const cursor = this.#readCursor();
    const out = ((this.#ist.search?.all(k, limit) ?? []) as { idx: number }[]).map((r) => Number(r.idx)).filter((i) => i < cursor);
    for (const r of this.#st.keysRange!.all(cursor, this.#committed) as { idx: number; index_keys: string }[]) {
      if (out.length >= limit) break;
      if (r.index_keys.split('\n').includes(k)) out.push(Number(r.idx));
    }
    return out.slice(0, limit);
  }

  putCheckpoint(cp: StoredCheckpoint): void {
    const db = this.#d;
    // The row rides on the next FULL commit (WAL order); it needs no fsync of its own.
    db.exec('PRAGMA synchronous=NORMAL');
    try {
      this.#st.putCp!.run(cp.size, cp.rootHash, cp.note, cp.noteV1, cp.publishedAt);
    } finally {
      db.exec('PRAGMA synchronous=FULL');
    }
  }

  #toCheckpoint(r: CheckpointRow): StoredCheckpoint {
    return { size: Number(r.size), rootHash: bytes(r.root_hash), note: r.note, noteV1: r.note_v1, publishedAt: Number(r.published_at) };
  }

  latestCheckpoint(): StoredCheckpoint | undefined {
    const r = this.#st.latest!.get() as unknown as CheckpointRow | undefined;
    return r ? this.#toCheckpoint(r) : undefined;
  }

  listCheckpoints(): StoredCheckpoint[] {
    return (this.#st.allCps!.all() as unknown as CheckpointRow[]).map((r) => this.#toCheckpoint(r));
  }

  close(): void {
    this.#follower?.close();
    this.#follower = undefined;
    this.#idx?.close();
    this.#idx = undefined;
    this.#ist = {};
    this.#db?.close();
    this.#db = undefined;
    if (this.#lock) {
      try {
        this.#lock.exec('ROLLBACK');
      } catch {
        // already released
      }
      this.#lock.close();
      this.#lock = undefined;
    }
  }
}

const INDEX_SCHEMA = `
  PRAGMA journal_mode=WAL;
  PRAGMA synchronous=NORMAL;
  PRAGMA cache_size=-65536;
  PRAGMA busy_timeout=5000;
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS dedup (leaf_hash BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS search_index (key TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
`;

/** Rows per follower transaction: random inserts cost ~60 us/row in steps of ~130, ~19 us in 2-4k. */
export const INDEX_STEP_MAX = 2048;

/**
 * The index follower: reads committed entries from log.db (its own connection) and fills
 * index.db, advancing the `indexed` cursor in the same transaction. It holds index.db's write
 * lock while it works, never log.db's. LogDb must have opened the directory first (it creates
 * and validates index.db).
 */
export class IndexFollower {
  readonly #log: DatabaseSync;
  readonly #idx: DatabaseSync;
  readonly #read: StatementSync;
  readonly #cursor: StatementSync;
  readonly #putCursor: StatementSync;
  readonly #dedup: StatementSync;
  readonly #index: StatementSync;

  constructor(dataDir: string) {
    this.#log = new DatabaseSync(join(dataDir, 'log.db'));
    this.#idx = new DatabaseSync(join(dataDir, 'index.db'));
    this.#log.exec('PRAGMA busy_timeout=5000');
    this.#idx.exec(INDEX_SCHEMA);
    this.#read = this.#log.prepare('SELECT idx, leaf_hash, index_keys FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?');
    this.#cursor = this.#idx.prepare("SELECT value FROM meta WHERE key = 'indexed'");
    this.#putCursor = this.#idx.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('indexed', ?)");
    this.#dedup = this.#idx.prepare('INSERT OR IGNORE INTO dedup (leaf_hash, idx) VALUES (?, ?)');
    this.#index = this.#idx.prepare('INSERT OR IGNORE INTO search_index (key, idx) VALUES (?, ?)');
  }

  /** Entries below this index are indexed. */
  cursor(): number {
    return Number((this.#cursor.get() as { value: string } | undefined)?.value ?? 0);
  }

  /** Indexes up to `max` entries past the cursor; returns how many. */
  step(max = INDEX_STEP_MAX): number {
    const cursor = this.cursor();
    const rows = this.#read.all(cursor, max) as { idx: number | bigint; leaf_hash: unknown; index_keys: string }[];
    if (rows.length === 0) return 0;
    const db = this.#idx;
    db.exec('BEGIN IMMEDIATE');
    try {
      let next = cursor;
      for (const r of rows) {
        const idx = Number(r.idx);
        if (idx !== next) throw new WaxsealError('ERR_LOG_INCONSISTENT', `entry ${next} is missing from the log database`);
        this.#dedup.run(bytes(r.leaf_hash), idx);
        if (r.index_keys) for (const k of r.index_keys.split('\n')) this.#index.run(k, idx);
        next++;
      }
      this.#putCursor.run(String(next));
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `log index update failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return rows.length;
  }

  close(): void {
    this.#idx.close();
    this.#log.close();
  }
}

/** leafHash(32) | integratedTime f64 | body length u32 | body | keys length u32 | keys (UTF-8, \n-joined). */
export function packEntries(entries: readonly NewEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const keys = entries.map((e) => enc.encode((e.indexKeys ?? []).join('\n')));
  let n = 0;
  entries.forEach((e, i) => (n += 32 + 8 + 4 + e.body.length + 4 + keys[i]!.length));
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  let o = 0;
  entries.forEach((e, i) => {
    out.set(e.leafHash, o);
    dv.setFloat64(o + 32, e.integratedTime);
    dv.setUint32(o + 40, e.body.length);
    out.set(e.body, o + 44);
    o += 44 + e.body.length;
    dv.setUint32(o, keys[i]!.length);
    out.set(keys[i]!, o + 4);
    o += 4 + keys[i]!.length;
  });
  return out;
}

export function unpackEntries(buf: Uint8Array): NewEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dec = new TextDecoder();
  const out: NewEntry[] = [];
  let o = 0;
  while (o < buf.length) {
    const leafHash = buf.subarray(o, o + 32);
    const integratedTime = dv.getFloat64(o + 32);
    const bodyLen = dv.getUint32(o + 40);
    const body = buf.subarray(o + 44, o + 44 + bodyLen);
    o += 44 + bodyLen;
    const keysLen = dv.getUint32(o);
    const keys = dec.decode(buf.subarray(o + 4, o + 4 + keysLen));
    o += 4 + keysLen;
    out.push({ leafHash, body, integratedTime, indexKeys: keys === '' ? [] : keys.split('\n') });
  }
  return out;
}
