// The SQLite half of the embedded storage driver, synchronous (node:sqlite). It runs on its own
// worker thread in a serving log (sqlite-worker.ts), so fsyncs never block the event loop, or
// inline for tools (fsck) and tests.
//
// log.db (the record; every commit fsync'd):
//   entries(idx PK, leaf_hash, body, metadata, index_keys)   appended in index order
//   checkpoints(size PK, root_hash, note, extra, published_at)
//   meta(key PK, value)                                       identity + personality params, `schema`
// index.db (derived from entries; rebuilt from them when missing or stale):
//   dedup(leaf_hash PK, idx)                                  leaf hash -> index
//   search_index(key, idx)                                    the personality's search keys
//   meta(key PK, value)                                       owner, `indexed` cursor, `schema`
//
// metadata, index_keys (a list in entry-bundle form: uint16 length + bytes) and extra are the
// personality's bytes, stored as BLOBs and never interpreted here.
//
// Schema 1 (before the engine lost its Rekor fields) named metadata `integrated_time` and held
// an INTEGER there, kept index keys as '\n'-joined TEXT, named extra `note_v1` (TEXT) and keyed
// search_index by TEXT. Opening such a log.db for writing renames the two columns (an O(1)
// schema change, no row is rewritten) and index.db's TEXT keys become BLOBs; the old values are
// read through the same byte view: an INTEGER as its 8-byte big-endian form (which is how the
// Rekor personality encodes its integratedTime), TEXT as its UTF-8 bytes. Read-only opens (fsck)
// read an unconverted file through the same view.
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

/** The schema this code writes (see the header for schema 1). */
const SCHEMA = '2';
/** meta keys of log.db that are not personality parameters. */
const RESERVED_META = new Set(['origin', 'publicKey', 'createdAt', 'schema']);

interface CheckpointRow {
  size: number;
  root_hash: unknown;
  note: string;
  extra: unknown;
  published_at: number;
}

function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new WaxsealError('ERR_LOG_INCONSISTENT', 'database returned a non-blob value');
}

const enc = new TextEncoder();

/** A personality column as bytes: BLOB as is; schema-1 INTEGER as 8 bytes big-endian, TEXT as UTF-8. */
function opaque(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return enc.encode(v);
  if (typeof v === 'number' || typeof v === 'bigint') {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(v));
    return out;
  }
  throw new WaxsealError('ERR_LOG_INCONSISTENT', 'database returned an unexpected value');
}

/** Search keys as stored: a packed list (BLOB), or schema 1's '\n'-joined TEXT. */
function storedKeys(v: unknown): Uint8Array[] {
  if (typeof v === 'string') return v === '' ? [] : v.split('\n').map((k) => enc.encode(k));
  return unpackList(bytes(v));
}

/** uint16 big-endian length + bytes, repeated (the entry-bundle form). */
function packList(items: readonly Uint8Array[] | undefined): Uint8Array {
  if (!items || items.length === 0) return EMPTY;
  let n = 0;
  for (const k of items) n += 2 + k.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const k of items) {
    if (k.length > 0xffff) throw new WaxsealError('ERR_LOG_ENTRY_INVALID', 'a search key is longer than 65535 bytes');
    out[o] = k.length >> 8;
    out[o + 1] = k.length & 0xff;
    out.set(k, o + 2);
    o += 2 + k.length;
  }
  return out;
}

function unpackList(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < b.length) {
    if (o + 2 > b.length) throw new WaxsealError('ERR_LOG_INCONSISTENT', 'malformed stored search keys');
    const n = (b[o]! << 8) | b[o + 1]!;
    if (o + 2 + n > b.length) throw new WaxsealError('ERR_LOG_INCONSISTENT', 'malformed stored search keys');
    out.push(b.subarray(o + 2, o + 2 + n));
    o += 2 + n;
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/** An entry as a commit writes it: search keys already packed. */
interface PackedEntry {
  leafHash: Uint8Array;
  body: Uint8Array;
  metadata: Uint8Array;
  keys: Uint8Array;
}

/**
 * Names index.db after its log: origin, the parameter values in key order, the public key. For
 * the Rekor personality (one parameter, treeId) this is the string schema 1 wrote, so an
 * upgraded index.db stays valid.
 */
function ownerOf(identity: LogIdentity): string {
  const params = Object.keys(identity.params)
    .sort()
    .map((k) => identity.params[k]!);
  return [identity.origin, ...params, identity.publicKey].join('\n');
}

/** Whether log.db still has schema 1's column names. */
function isSchema1(db: DatabaseSync): boolean {
  const cols = (db.prepare('PRAGMA table_info(entries)').all() as { name: string }[]).map((c) => c.name);
  return cols.includes('integrated_time');
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
  /** Set when a failed commit left the database at an unexpected size: reopen to go on. */
  #broken: WaxsealError | undefined;

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
      this.#prepare(isSchema1(this.#db));
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
        idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, body BLOB NOT NULL, metadata BLOB NOT NULL, index_keys BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, extra BLOB NOT NULL, published_at INTEGER NOT NULL);
    `);
    if (isSchema1(db)) {
      // Upgrade in place: rename only (old values are read through opaque()/storedKeys()).
      db.exec(`BEGIN IMMEDIATE;
        ALTER TABLE entries RENAME COLUMN integrated_time TO metadata;
        ALTER TABLE checkpoints RENAME COLUMN note_v1 TO extra;
        INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', '${SCHEMA}');
        COMMIT`);
    }
    this.#prepare(false);
    const existing = this.#identity();
    let result = identity;
    if (existing) {
      result = existing;
    } else {
      for (const k of Object.keys(identity.params))
        if (RESERVED_META.has(k)) throw new WaxsealError('ERR_CONFIG', `log parameter name ${k} is reserved by the storage`);
      db.exec('BEGIN IMMEDIATE');
      this.#st.putMeta!.run('origin', identity.origin);
      this.#st.putMeta!.run('publicKey', identity.publicKey);
      this.#st.putMeta!.run('createdAt', identity.createdAt);
      this.#st.putMeta!.run('schema', SCHEMA);
      for (const [k, v] of Object.entries(identity.params)) this.#st.putMeta!.run(k, v);
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
    const owner = ownerOf(identity);
    const stored = (get.get('owner') as { value: string } | undefined)?.value;
    const cursor = Number((get.get('indexed') as { value: string } | undefined)?.value ?? 0);
    const put = idx.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    if (stored !== owner || !(cursor <= this.#committed)) {
      idx.exec('BEGIN IMMEDIATE; DELETE FROM dedup; DELETE FROM search_index; DELETE FROM meta');
      put.run('owner', owner);
      put.run('indexed', '0');
      put.run('schema', SCHEMA);
      idx.exec('COMMIT');
    } else if ((get.get('schema') as { value: string } | undefined)?.value !== SCHEMA) {
      // Schema 1 keyed search_index by TEXT; the keys are bytes now (TEXT and BLOB never compare equal).
      idx.exec("BEGIN IMMEDIATE; UPDATE search_index SET key = CAST(key AS BLOB) WHERE typeof(key) = 'text'");
      put.run('schema', SCHEMA);
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
    const params = Object.fromEntries(rows.filter((r) => !RESERVED_META.has(r.key)).map((r) => [r.key, r.value]));
    return { origin: m.origin ?? '', publicKey: m.publicKey ?? '', createdAt: m.createdAt ?? '', params };
  }

  /** `schema1`: a read-only open of a log.db whose columns still have their schema-1 names. */
  #prepare(schema1: boolean): void {
    const db = this.#d;
    const metadata = schema1 ? 'integrated_time AS metadata' : 'metadata';
    const extra = schema1 ? 'note_v1 AS extra' : 'extra';
    this.#st = {
      size: db.prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM entries'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      range: db.prepare(`SELECT idx, leaf_hash, body, ${metadata} FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx`),
      leafRange: db.prepare('SELECT idx, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      latest: db.prepare(`SELECT size, root_hash, note, ${extra}, published_at FROM checkpoints ORDER BY size DESC LIMIT 1`),
      allCps: db.prepare(`SELECT size, root_hash, note, ${extra}, published_at FROM checkpoints ORDER BY size`),
      keysRange: db.prepare('SELECT idx, index_keys FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      ...(this.#readOnly
        ? {}
        : {
            putMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
            insert: db.prepare('INSERT INTO entries (idx, leaf_hash, body, metadata, index_keys) VALUES (?, ?, ?, ?, ?)'),
            putCp: db.prepare('INSERT OR REPLACE INTO checkpoints (size, root_hash, note, extra, published_at) VALUES (?, ?, ?, ?, ?)'),
          }),
    };
  }

  #size(): number {
    return Number((this.#st.size!.get() as { n: number | bigint }).n);
  }

  committedSize(): number {
    if (this.#broken) throw this.#broken;
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
    return this.commitPacked(
      first,
      entries.map((e) => ({ leafHash: e.leafHash, body: e.body, metadata: e.metadata, keys: packList(e.indexKeys) })),
    );
  }

  commitPacked(first: number, entries: readonly PackedEntry[]): CommitResult {
    const db = this.#d;
    if (this.#broken) throw this.#broken;
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
        this.#st.insert!.run(i, e.leafHash, e.body, e.metadata, e.keys);
        added.set(k, i);
        i++;
      }
      // synchronous=FULL: COMMIT returns after the WAL is fsync'd.
      db.exec('COMMIT');
    } catch (e) {
      try {
        if (db.isTransaction) db.exec('ROLLBACK');
      } catch {
        // the outcome is checked below
      }
      const err =
        e instanceof WaxsealError
          ? e
          : new WaxsealError('ERR_IO', `log commit failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      // A failed COMMIT can still have reached the disk: refuse to go on from a guess.
      let size: number | undefined;
      try {
        size = this.#size();
      } catch {
        size = undefined;
      }
      if (size !== first)
        this.#broken = new WaxsealError('ERR_LOG_INCONSISTENT', `a failed commit left log.db at size ${size ?? 'unknown'}; reopen the log`);
      throw err;
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
    return (this.#st.range!.all(start, end) as { idx: number; leaf_hash: unknown; body: unknown; metadata: unknown }[]).map((r) => ({
      index: Number(r.idx),
      leafHash: bytes(r.leaf_hash),
      body: bytes(r.body),
      metadata: opaque(r.metadata),
    }));
  }

  /** Search keys of entries not yet indexed are found too (they are few: the follower's lag). */
  searchIndex(k: Uint8Array, limit: number): number[] {
    const cursor = this.#readCursor();
    const out = ((this.#ist.search?.all(k, limit) ?? []) as { idx: number }[]).map((r) => Number(r.idx)).filter((i) => i < cursor);
    const want = key(k);
    for (const r of this.#st.keysRange!.all(cursor, this.#committed) as { idx: number; index_keys: unknown }[]) {
      if (out.length >= limit) break;
      if (storedKeys(r.index_keys).some((x) => key(x) === want)) out.push(Number(r.idx));
    }
    return out.slice(0, limit);
  }

  putCheckpoint(cp: StoredCheckpoint): void {
    const db = this.#d;
    // The row rides on the next FULL commit (WAL order); it needs no fsync of its own.
    db.exec('PRAGMA synchronous=NORMAL');
    try {
      this.#st.putCp!.run(cp.size, cp.rootHash, cp.note, cp.extra, cp.publishedAt);
    } finally {
      db.exec('PRAGMA synchronous=FULL');
    }
  }

  #toCheckpoint(r: CheckpointRow): StoredCheckpoint {
    return {
      size: Number(r.size),
      rootHash: bytes(r.root_hash),
      note: r.note,
      extra: opaque(r.extra),
      publishedAt: Number(r.published_at),
    };
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
  CREATE TABLE IF NOT EXISTS search_index (key BLOB NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
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
    const rows = this.#read.all(cursor, max) as { idx: number | bigint; leaf_hash: unknown; index_keys: unknown }[];
    if (rows.length === 0) return 0;
    const db = this.#idx;
    db.exec('BEGIN IMMEDIATE');
    try {
      let next = cursor;
      for (const r of rows) {
        const idx = Number(r.idx);
        if (idx !== next) throw new WaxsealError('ERR_LOG_INCONSISTENT', `entry ${next} is missing from the log database`);
        this.#dedup.run(bytes(r.leaf_hash), idx);
        for (const k of storedKeys(r.index_keys)) this.#index.run(k, idx);
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

/** Per entry: leafHash(32) | u32 metadata length | metadata | u32 body length | body | u32 keys length | packed keys. */
export function packEntries(entries: readonly NewEntry[]): Uint8Array {
  let n = 0;
  for (const e of entries) {
    n += 32 + 4 + e.metadata.length + 4 + e.body.length + 4;
    if (e.indexKeys) for (const k of e.indexKeys) n += 2 + k.length;
  }
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  let o = 0;
  const put = (b: Uint8Array) => {
    dv.setUint32(o, b.length);
    out.set(b, o + 4);
    o += 4 + b.length;
  };
  for (const e of entries) {
    out.set(e.leafHash, o);
    o += 32;
    put(e.metadata);
    put(e.body);
    // The keys straight in their stored form (packList's), without a buffer of their own.
    const at = o;
    o += 4;
    if (e.indexKeys)
      for (const k of e.indexKeys) {
        if (k.length > 0xffff) throw new WaxsealError('ERR_LOG_ENTRY_INVALID', 'a search key is longer than 65535 bytes');
        dv.setUint16(o, k.length);
        out.set(k, o + 2);
        o += 2 + k.length;
      }
    dv.setUint32(at, o - at - 4);
  }
  return out;
}

export function unpackEntries(buf: Uint8Array): PackedEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: PackedEntry[] = [];
  let o = 0;
  const take = () => {
    const len = dv.getUint32(o);
    const b = buf.subarray(o + 4, o + 4 + len);
    o += 4 + len;
    return b;
  };
  while (o < buf.length) {
    const leafHash = buf.subarray(o, o + 32);
    o += 32;
    const metadata = take();
    const body = take();
    out.push({ leafHash, body, metadata, keys: take() });
  }
  return out;
}

/** The stored (packed) search keys back as a list (tests, tools). */
export const unpackKeys = unpackList;
