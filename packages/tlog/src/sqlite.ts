// The embedded LogStorage driver: SQLite (node:sqlite, WAL, synchronous=FULL) for sequenced
// entries, the search index and checkpoints; plain files for tiles and entry bundles, laid out
// exactly as the tlog-tiles URL space so a static web server or CDN can serve the directory.
//
//   <dataDir>/log.db                 entries, checkpoints, log identity (the record; sqlite-db.ts)
//   <dataDir>/index.db               dedup and search indexes (derived; rebuilt when stale)
//   <dataDir>/lock.db                held in an exclusive transaction while the log is open
//   <dataDir>/tile/<L>/<N>           hash tiles (newest version; partial tiles grow in place)
//   <dataDir>/tile/entries/<N>       entry bundles
//   <dataDir>/checkpoint             newest C2SP checkpoint (rewritten on every publish)
//
// SQLite runs on a worker thread (sqlite-worker.ts) so its fsyncs never block the event loop;
// the index follower runs on another (index-worker.ts) so commits never wait for it.
// Tile files only ever grow. A new version is written in place from the first byte this
// process has not written yet, then fdatasync'd; a crash can only leave a torn tail beyond
// the last durable checkpoint, which recovery rewrites (see TransparencyLog.open).
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { open, readFile, rename, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WaxsealError, ERROR_CODES, siblingModuleUrl, type ErrorCode } from '@waxseal/core';
import { encodeTileIndex } from './tiles.ts';
import type { TileWrite } from './tree.ts';
import type { BundleWrite, CommitResult, LogIdentity, LogStorage, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';
import { LogDb, packEntries } from './sqlite-db.ts';

export interface SqliteStorageOptions {
  /** Open without taking the writer lock and without creating anything (fsck, backup). */
  readOnly?: boolean;
  /** Run SQLite on the calling thread instead of a worker thread (tools, tests). */
  inline?: boolean;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The database, inline or behind a worker thread; every call is async either way. */
interface DbHandle {
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  terminate(): Promise<void>;
}

function inlineDb(dataDir: string, readOnly: boolean): DbHandle {
  const db = new LogDb(dataDir, readOnly);
  return {
    async call<T>(method: string, ...args: unknown[]): Promise<T> {
      const r = (db as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!.apply(db, args) as T;
      if (method === 'commit') while (db.indexStep(4096) > 0);
      return r;
    },
    async terminate() {
      db.close();
    },
  };
}

function workerDb(dataDir: string): DbHandle {
  const worker = new Worker(siblingModuleUrl(import.meta.url, 'sqlite-worker'), { workerData: { dataDir } });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let seq = 0;
  let dead: WaxsealError | undefined;
  worker.on('message', (m: { id: number; result?: unknown; error?: { code: string; message: string } }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.error) p.reject(new WaxsealError((m.error.code in ERROR_CODES ? m.error.code : 'ERR_IO') as ErrorCode, m.error.message));
    else p.resolve(m.result);
  });
  const fail = (e: unknown) => {
    dead = new WaxsealError('ERR_IO', `log database thread stopped: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
  return {
    call<T>(method: string, ...args: unknown[]): Promise<T> {
      if (dead) return Promise.reject(dead);
      return new Promise<T>((resolve, reject) => {
        const id = ++seq;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        // Only the packed commit (a fresh buffer) is moved; other byte arguments belong to the caller.
        const transfer = method === 'commitPacked' ? [(args[1] as Uint8Array).buffer as ArrayBuffer] : [];
        worker.postMessage({ id, method, args }, transfer);
      });
    },
    async terminate() {
      await worker.terminate();
    },
  };
}

/** The index follower's thread (index-worker.ts); it only needs the committed size. */
class IndexThread {
  readonly #worker: Worker;
  #failed = false;

  constructor(dataDir: string) {
    this.#worker = new Worker(siblingModuleUrl(import.meta.url, 'index-worker'), { workerData: { dataDir } });
    // The index is derived data: if its thread dies, lookups keep working from the committer's
    // in-memory map and the index is caught up when the log next opens.
    this.#worker.on('error', (e) => {
      this.#failed = true;
      process.stderr.write(`log index thread stopped: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  }

  committed(size: number): void {
    if (!this.#failed) this.#worker.postMessage({ committed: size });
  }

  async close(): Promise<void> {
    if (!this.#failed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        this.#worker.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
        this.#worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        this.#worker.postMessage({ close: true });
      });
    }
    await this.#worker.terminate();
  }
}

export class SqliteFileStorage implements LogStorage {
  readonly dataDir: string;
  readonly #readOnly: boolean;
  readonly #inline: boolean;
  #db: DbHandle | undefined;
  #index: IndexThread | undefined;
  /** Bytes of each tile file this process has written (so later versions append). */
  readonly #written = new Map<string, number>();
  readonly #knownDirs = new Set<string>();

  constructor(dataDir: string, opts: SqliteStorageOptions = {}) {
    this.dataDir = dataDir;
    this.#readOnly = opts.readOnly ?? false;
    this.#inline = this.#readOnly || (opts.inline ?? false);
  }

  #call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (!this.#db) return Promise.reject(new WaxsealError('ERR_INTERNAL', 'log storage is not open'));
    return this.#db.call<T>(method, ...args);
  }

  async open(identity: LogIdentity): Promise<LogIdentity> {
    if (this.#readOnly && !existsSync(join(this.dataDir, 'log.db')))
      throw new WaxsealError('ERR_NOT_FOUND', `no log database in ${this.dataDir}`);
    this.#db = this.#inline ? inlineDb(this.dataDir, this.#readOnly) : workerDb(this.dataDir);
    try {
      const result = await this.#call<LogIdentity>('open', identity);
      if (!this.#inline) {
        this.#index = new IndexThread(this.dataDir);
        this.#index.committed(await this.committedSize());
      }
      return result;
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  committedSize(): Promise<number> {
    return this.#call('committedSize');
  }

  async commit(first: number, entries: readonly NewEntry[]): Promise<CommitResult> {
    if (this.#inline) return this.#call('commit', first, entries);
    // One transferable buffer instead of hundreds of cloned objects.
    const result = await this.#call<CommitResult>('commitPacked', first, packEntries(entries));
    this.#index?.committed(first + result.duplicates.filter((d) => d === undefined).length);
    return result;
  }

  findByLeafHash(hashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    return this.#call('findByLeafHash', hashes);
  }

  readEntries(start: number, end: number): Promise<StoredEntry[]> {
    return this.#call('readEntries', start, end);
  }

  searchIndex(key: Uint8Array, limit: number): Promise<number[]> {
    return this.#call('searchIndex', key, limit);
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

  /** Open handles of partial tiles, which are written again at the next batch. */
  readonly #handles = new Map<string, FileHandle>();

  async #handle(path: string): Promise<{ fh: FileHandle; created: boolean }> {
    const cached = this.#handles.get(path);
    if (cached) return { fh: cached, created: false };
    await this.#ensureDir(dirname(path));
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fh = await open(path, 'w+');
      created = true;
    }
    return { fh, created };
  }

  /** Writes the part of `data` this process has not written yet, then fdatasyncs. */
  async #writeGrowing(path: string, data: Uint8Array, full: boolean): Promise<void> {
    const known = this.#written.get(path);
    const { fh, created } = await this.#handle(path);
    try {
      // The first write of a file in this process rewrites it whole: bytes a crashed process
      // left behind (possibly torn) are never trusted.
      const from = known !== undefined && known <= data.length ? known : 0;
      if (from < data.length) await fh.write(data, from, data.length - from, from);
      if (known === undefined) await fh.truncate(data.length);
      await fh.datasync();
    } catch (e) {
      this.#handles.delete(path);
      await fh.close().catch(() => undefined);
      throw e;
    }
    if (created) await fsyncDir(dirname(path));
    this.#written.set(path, data.length);
    // Full tiles never change again: close them; keep partial ones open for the next batch.
    if (full) {
      this.#handles.delete(path);
      await fh.close();
    } else {
      this.#handles.set(path, fh);
      while (this.#handles.size > 128) {
        const [oldPath, old] = this.#handles.entries().next().value!;
        this.#handles.delete(oldPath);
        await old.close();
      }
    }
  }

  async writeTiles(tiles: readonly TileWrite[], bundles: readonly BundleWrite[]): Promise<void> {
    try {
      await Promise.all([
        ...tiles.map((t) => this.#writeGrowing(this.tileFile(t.level, t.index), t.data, t.data.length === 256 * 32)),
        ...bundles.map((b) => this.#writeGrowing(this.tileFile(-1, b.index), b.data, b.full)),
      ]);
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `tile write failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async putCheckpoint(cp: StoredCheckpoint): Promise<void> {
    await this.#call('putCheckpoint', cp);
    const path = join(this.dataDir, 'checkpoint');
    await writeFile(`${path}.tmp`, cp.note);
    await rename(`${path}.tmp`, path);
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#call('latestCheckpoint');
  }

  /** Every stored checkpoint, ascending by size (fsck; not part of LogStorage). */
  listCheckpoints(): Promise<StoredCheckpoint[]> {
    return this.#call('listCheckpoints');
  }

  async close(): Promise<void> {
    for (const fh of this.#handles.values()) await fh.close().catch(() => undefined);
    this.#handles.clear();
    const index = this.#index;
    this.#index = undefined;
    await index?.close();
    const db = this.#db;
    this.#db = undefined;
    if (!db) return;
    try {
      await db.call('close');
    } catch {
      // the thread may already be gone
    }
    await db.terminate();
  }
}
