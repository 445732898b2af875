// The embedded LogStorage driver: SQLite (node:sqlite, WAL, synchronous=FULL) for sequenced
// entries, the search index and checkpoints; plain files for tiles and entry bundles, laid out
// exactly as the tlog-tiles URL space so a static web server or CDN can serve the directory.
//
//   <dataDir>/log.db                 entries, checkpoints, search index, log identity
//   <dataDir>/lock.db                held in an exclusive transaction while the log is open
//   <dataDir>/tile/<L>/<N>           hash tiles (newest version; partial tiles grow in place)
//   <dataDir>/tile/entries/<N>       entry bundles
//   <dataDir>/checkpoint             newest C2SP checkpoint (rewritten on every publish)
//
// Tile files only ever grow. A new version is written in place from the first byte this
// process has not written yet, then fdatasync'd; a crash can only leave a torn tail beyond
// the last durable checkpoint, which recovery rewrites (see TransparencyLog.open).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync, existsSync } from 'node:fs';
import { open, readFile, rename, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WaxsealError } from '../core/errors.ts';
import { encodeTileIndex } from './tiles.ts';
import type { TileWrite } from './tree.ts';
import type { BundleWrite, LogIdentity, LogStorage, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';

export interface SqliteStorageOptions {
  /** Open without taking the writer lock and without creating anything (fsck, backup). */
  readOnly?: boolean;
}

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

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class SqliteFileStorage implements LogStorage {
  readonly dataDir: string;
  readonly #readOnly: boolean;
  #db: DatabaseSync | undefined;
  #lock: DatabaseSync | undefined;
  #st: Record<string, StatementSync> = {};
  /** Bytes of each tile file this process has written (so later versions append). */
  readonly #written = new Map<string, number>();
  readonly #knownDirs = new Set<string>();

  constructor(dataDir: string, opts: SqliteStorageOptions = {}) {
    this.dataDir = dataDir;
    this.#readOnly = opts.readOnly ?? false;
  }

  get #d(): DatabaseSync {
    if (!this.#db) throw new WaxsealError('ERR_INTERNAL', 'log storage is not open');
    return this.#db;
  }

  async open(identity: LogIdentity): Promise<LogIdentity> {
    if (this.#readOnly) {
      if (!existsSync(join(this.dataDir, 'log.db'))) throw new WaxsealError('ERR_NOT_FOUND', `no log database in ${this.dataDir}`);
      this.#db = new DatabaseSync(join(this.dataDir, 'log.db'), { readOnly: true });
      this.#prepare();
      return this.#identity() ?? identity;
    }
    mkdirSync(join(this.dataDir, 'tile'), { recursive: true });
    // Single writer: a second process opening the same directory fails instead of forking it.
    this.#lock = new DatabaseSync(join(this.dataDir, 'lock.db'));
    try {
      this.#lock.exec('PRAGMA busy_timeout=0; BEGIN EXCLUSIVE');
    } catch (e) {
      this.#lock.close();
      this.#lock = undefined;
      throw new WaxsealError('ERR_CONFIG', `log data directory ${this.dataDir} is in use by another process`, { cause: e });
    }
    const db = new DatabaseSync(join(this.dataDir, 'log.db'));
    this.#db = db;
    db.exec(`
      PRAGMA journal_mode=WAL;
      PRAGMA synchronous=FULL;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS entries (
        idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL UNIQUE, body BLOB NOT NULL, integrated_time INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, note_v1 TEXT NOT NULL, published_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS search_index (key TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
    `);
    this.#prepare();
    const existing = this.#identity();
    if (existing) {
      for (const k of ['origin', 'treeId', 'publicKey'] as const) {
        if (existing[k] !== identity[k]) {
          throw new WaxsealError('ERR_CONFIG', `log data directory ${this.dataDir} holds a log with a different ${k} (${JSON.stringify(existing[k]).slice(0, 80)})`);
        }
      }
      return existing;
    }
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    db.exec('BEGIN IMMEDIATE');
    for (const [k, v] of Object.entries(identity)) put.run(k, v);
    db.exec('COMMIT');
    return identity;
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
      byLeaf: db.prepare('SELECT idx FROM entries WHERE leaf_hash = ?'),
      range: db.prepare('SELECT idx, leaf_hash, body, integrated_time FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      search: db.prepare('SELECT idx FROM search_index WHERE key = ? ORDER BY idx LIMIT ?'),
      latest: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size DESC LIMIT 1'),
      allCps: db.prepare('SELECT size, root_hash, note, note_v1, published_at FROM checkpoints ORDER BY size'),
      ...(this.#readOnly
        ? {}
        : {
            insert: db.prepare('INSERT INTO entries (idx, leaf_hash, body, integrated_time) VALUES (?, ?, ?, ?)'),
            index: db.prepare('INSERT OR IGNORE INTO search_index (key, idx) VALUES (?, ?)'),
            putCp: db.prepare('INSERT OR REPLACE INTO checkpoints (size, root_hash, note, note_v1, published_at) VALUES (?, ?, ?, ?, ?)'),
          }),
    };
  }

  async committedSize(): Promise<number> {
    return Number((this.#st.size!.get() as { n: number | bigint }).n);
  }

  async commit(first: number, entries: readonly NewEntry[]): Promise<void> {
    const db = this.#d;
    db.exec('BEGIN IMMEDIATE');
    try {
      const size = Number((this.#st.size!.get() as { n: number | bigint }).n);
      if (size !== first) throw new WaxsealError('ERR_LOG_INCONSISTENT', `commit at ${first} but the log holds ${size} entries`);
      let i = first;
      for (const e of entries) {
        this.#st.insert!.run(i, e.leafHash, e.body, e.integratedTime);
        if (e.indexKeys) for (const k of e.indexKeys) this.#st.index!.run(k, i);
        i++;
      }
      // synchronous=FULL: COMMIT returns after the WAL is fsync'd.
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `log commit failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async findByLeafHash(hashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    return hashes.map((h) => {
      const r = this.#st.byLeaf!.get(h) as { idx: number | bigint } | undefined;
      return r === undefined ? undefined : Number(r.idx);
    });
  }

  async readEntries(start: number, end: number): Promise<StoredEntry[]> {
    return (this.#st.range!.all(start, end) as { idx: number; leaf_hash: unknown; body: unknown; integrated_time: number }[]).map((r) => ({
      index: Number(r.idx),
      leafHash: bytes(r.leaf_hash),
      body: bytes(r.body),
      integratedTime: Number(r.integrated_time),
    }));
  }

  async searchIndex(key: string, limit: number): Promise<number[]> {
    return (this.#st.search!.all(key, limit) as { idx: number }[]).map((r) => Number(r.idx));
  }

  tileFile(level: number, index: number): string {
    return join(this.dataDir, 'tile', level < 0 ? 'entries' : String(level), ...encodeTileIndex(index).split('/'));
  }

  async #readMaybe(path: string): Promise<Uint8Array | undefined> {
    try {
      const b = await readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.length);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WaxsealError('ERR_IO', `cannot read ${path}`, { cause: e });
    }
  }

  readTile(level: number, index: number): Promise<Uint8Array | undefined> {
    return this.#readMaybe(this.tileFile(level, index));
  }

  readEntryBundle(index: number): Promise<Uint8Array | undefined> {
    return this.#readMaybe(this.tileFile(-1, index));
  }

  async #ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    if (!existsSync(dir)) {
      await this.#ensureDir(dirname(dir));
      await mkdir(dir, { recursive: true });
      // Make the new directory entry itself durable.
      await fsyncDir(dirname(dir));
    }
    this.#knownDirs.add(dir);
  }

  /** Writes the part of `data` this process has not written yet, then fdatasyncs. */
  async #writeGrowing(path: string, data: Uint8Array): Promise<void> {
    await this.#ensureDir(dirname(path));
    const known = this.#written.get(path);
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fh = await open(path, 'w+');
      created = true;
    }
    try {
      // The first write of a file in this process rewrites it whole: bytes a crashed process
      // left behind (possibly torn) are never trusted.
      const from = known !== undefined && known <= data.length ? known : 0;
      if (from < data.length) await fh.write(data, from, data.length - from, from);
      if (known === undefined) await fh.truncate(data.length);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (created) await fsyncDir(dirname(path));
    this.#written.set(path, data.length);
  }

  async writeTiles(tiles: readonly TileWrite[], bundles: readonly BundleWrite[]): Promise<void> {
    try {
      await Promise.all([
        ...tiles.map((t) => this.#writeGrowing(this.tileFile(t.level, t.index), t.data)),
        ...bundles.map((b) => this.#writeGrowing(this.tileFile(-1, b.index), b.data)),
      ]);
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `tile write failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async putCheckpoint(cp: StoredCheckpoint): Promise<void> {
    const db = this.#d;
    // The row rides on the next FULL commit (WAL order); no fsync of its own is needed.
    db.exec('PRAGMA synchronous=NORMAL');
    try {
      this.#st.putCp!.run(cp.size, cp.rootHash, cp.note, cp.noteV1, cp.publishedAt);
    } finally {
      db.exec('PRAGMA synchronous=FULL');
    }
    const path = join(this.dataDir, 'checkpoint');
    await writeFile(`${path}.tmp`, cp.note);
    await rename(`${path}.tmp`, path);
  }

  #toCheckpoint(r: CheckpointRow): StoredCheckpoint {
    return { size: Number(r.size), rootHash: bytes(r.root_hash), note: r.note, noteV1: r.note_v1, publishedAt: Number(r.published_at) };
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const r = this.#st.latest!.get() as unknown as CheckpointRow | undefined;
    return r ? this.#toCheckpoint(r) : undefined;
  }

  async listCheckpoints(): Promise<StoredCheckpoint[]> {
    return (this.#st.allCps!.all() as unknown as CheckpointRow[]).map((r) => this.#toCheckpoint(r));
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    if (this.#lock) {
      try {
        this.#lock.exec('ROLLBACK');
      } catch {
        // already closed
      }
      this.#lock.close();
      this.#lock = undefined;
    }
  }
}
