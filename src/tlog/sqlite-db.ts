// The SQLite half of the embedded storage driver, synchronous (node:sqlite). It runs on its own
// worker thread in a serving log (sqlite-worker.ts), so fsyncs never block the event loop, or
// inline for tools (fsck) and tests.
//
// Tables:
//   entries(idx PK, leaf_hash, body, integrated_time, index_keys)   appended in index order
//   dedup(leaf_hash PK, idx)                                          leaf hash -> index
//   search_index(key, idx)                                            Rekor v1 search keys
//   checkpoints(size PK, root_hash, note, note_v1, published_at)
//   meta(key PK, value)                                               identity, `indexed` cursor
//
// Only `entries` is written by the fsync'd commit: its rows append at the end of the rowid
// B-tree, so a batch dirties a handful of pages. The two hash-keyed indexes (random B-tree
// inserts, many pages per batch) are filled afterwards by a follower in non-fsync'd
// transactions, as Tessera's antispam follower does; entries committed but not yet indexed
// are deduplicated through an in-memory map that the follower drains. A crash loses at most
// unfsync'd follower work, which is redone from `entries` on open: deduplication stays exact.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '../core/errors.ts';
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
  /** Leaf hash -> index for entries in [indexed, committed). */
  readonly #recent = new Map<string, number>();

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
      CREATE TABLE IF NOT EXISTS dedup (leaf_hash BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, note_v1 TEXT NOT NULL, published_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS search_index (key TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
    `);
    this.#prepare();
    const existing = this.#identity();
    let result = identity;
    if (existing) {
      for (const k of ['origin', 'treeId', 'publicKey'] as const) {
        if (existing[k] !== identity[k]) {
          throw new WaxsealError('ERR_CONFIG', `log data directory ${this.#dir} holds a log with a different ${k} (${JSON.stringify(existing[k]).slice(0, 80)})`);
        }
      }
      result = existing;
    } else {
      db.exec('BEGIN IMMEDIATE');
      for (const [k, v] of Object.entries(identity)) this.#st.putMeta!.run(k, v);
      this.#st.putMeta!.run('indexed', '0');
      db.exec('COMMIT');
    }
    this.#loadCursors();
    return result;
  }

  /** Committed size, follower cursor, and the not-yet-indexed leaf hashes. */
  #loadCursors(): void {
    this.#committed = this.#size();
    const indexed = (this.#st.getMeta!.get('indexed') as { value: string } | undefined)?.value;
    this.#indexed = Math.min(Number(indexed ?? 0), this.#committed);
    for (const r of this.#st.leafRange!.all(this.#indexed, this.#committed) as { idx: number; leaf_hash: unknown }[]) {
      this.#recent.set(key(bytes(r.leaf_hash)), Number(r.idx));
    }
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
      byLeaf: db.prepare('SELECT idx FROM dedup WHERE leaf_hash = ?'),
      range: db.prepare('SELECT idx, leaf_hash, body, integrated_time FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      leafRange: db.prepare('SELECT idx, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      search: db.prepare('SELECT idx FROM search_index WHERE key = ? ORDER BY idx LIMIT ?'),
      latest: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size DESC LIMIT 1'),
      allCps: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size'),
      ...(this.#readOnly
        ? {}
        : {
            putMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
            insert: db.prepare('INSERT INTO entries (idx, leaf_hash, body, integrated_time, index_keys) VALUES (?, ?, ?, ?, ?)'),
            keysRange: db.prepare('SELECT idx, leaf_hash, index_keys FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
            dedup: db.prepare('INSERT OR IGNORE INTO dedup (leaf_hash, idx) VALUES (?, ?)'),
            index: db.prepare('INSERT OR IGNORE INTO search_index (key, idx) VALUES (?, ?)'),
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
    const r = this.#st.byLeaf!.get(h) as { idx: number | bigint } | undefined;
    return r === undefined ? undefined : Number(r.idx);
  }

  /** Appends the entries not already in the log, in one fsync'd transaction (the "commit"). */
  commit(first: number, entries: readonly NewEntry[]): CommitResult {
    const db = this.#d;
    if (first !== this.#committed) throw new WaxsealError('ERR_LOG_INCONSISTENT', `commit at ${first} but the log holds ${this.#committed} entries`);
    const duplicates: (number | undefined)[] = [];
    const added = new Map<string, number>();
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
    for (const [k, idx] of added) this.#recent.set(k, idx);
    this.#committed += added.size;
    return { duplicates };
  }

  /** True when the follower has work. */
  get indexBacklog(): number {
    return this.#committed - this.#indexed;
  }

  /** One follower step: indexes up to `max` committed entries (not fsync'd; see above). */
  indexStep(max = 2048): number {
    if (this.#readOnly || this.#indexed >= this.#committed) return 0;
    const db = this.#d;
    const end = Math.min(this.#committed, this.#indexed + max);
    const rows = this.#st.keysRange!.all(this.#indexed, end) as { idx: number; leaf_hash: unknown; index_keys: string }[];
    db.exec('PRAGMA synchronous=NORMAL');
    db.exec('BEGIN IMMEDIATE');
    try {
      for (const r of rows) {
        const idx = Number(r.idx);
        this.#st.dedup!.run(bytes(r.leaf_hash), idx);
        if (r.index_keys) for (const k of r.index_keys.split('\n')) this.#st.index!.run(k, idx);
      }
      this.#st.putMeta!.run('indexed', String(end));
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw new WaxsealError('ERR_IO', `log index update failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    } finally {
      db.exec('PRAGMA synchronous=FULL');
    }
    for (const r of rows) this.#recent.delete(key(bytes(r.leaf_hash)));
    this.#indexed = end;
    return rows.length;
  }

  findByLeafHash(hashes: readonly Uint8Array[]): (number | undefined)[] {
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
    const out = (this.#st.search!.all(k, limit) as { idx: number }[]).map((r) => Number(r.idx));
    if (!this.#readOnly && this.#indexed < this.#committed) {
      for (const r of this.#st.keysRange!.all(this.#indexed, this.#committed) as { idx: number; index_keys: string }[]) {
        if (r.index_keys.split('\n').includes(k)) out.push(Number(r.idx));
      }
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
