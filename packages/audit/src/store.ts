// Where audit records live. The AuditLog computes the chain; a store only keeps records in seq
// order and refuses an append that does not extend its current head (so two writers can never
// fork the chain, even across processes).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { encodeRecord, type AuditHead, type AuditRecord } from './record.ts';

export interface AuditListOptions {
  /** First seq to return (default 1). */
  from?: number;
  /** Most records to return (default: all). */
  limit?: number;
}

export interface AuditStore {
  /**
   * Appends `record`, which must extend the current head (record.seq = head.seq + 1 and
   * record.prevHash = head.hash); otherwise throws ERR_CONFLICT and stores nothing.
   */
  append(record: AuditRecord): Promise<void>;
  /**
   * Appends consecutive records atomically (all or none), the first extending the head: the
   * group commit that keeps one fsync per batch instead of one per record.
   */
  appendMany?(records: readonly AuditRecord[]): Promise<void>;
  /** Records in seq order, as stored (they are not verified here). */
  list(opts?: AuditListOptions): AsyncIterable<AuditRecord>;
  /** The last stored record's seq and hash, undefined when empty. */
  head(): Promise<AuditHead | undefined>;
  /** Where the stored records start when earlier ones were pruned: the last pruned record. */
  base?(): Promise<AuditHead | undefined>;
  close(): Promise<void>;
}

function conflict(record: AuditRecord, head: AuditHead | undefined): WaxsealError {
  return new WaxsealError('ERR_CONFLICT', `audit append of seq ${record.seq} does not extend head seq ${head?.seq ?? 0}`);
}

function checkExtends(record: AuditRecord, head: AuditHead | undefined, genesis: string): void {
  const expectedSeq = (head?.seq ?? 0) + 1;
  const expectedPrev = head?.hash ?? genesis;
  if (record.seq !== expectedSeq || record.prevHash !== expectedPrev) throw conflict(record, head);
}

const GENESIS = '0'.repeat(64);

/** In-memory store, for tests and throwaway dev instances. */
export class MemoryAuditStore implements AuditStore {
  readonly records: AuditRecord[] = [];

  async append(record: AuditRecord): Promise<void> {
    checkExtends(record, await this.head(), GENESIS);
    this.records.push(structuredClone(record));
  }

  async appendMany(records: readonly AuditRecord[]): Promise<void> {
    let head = await this.head();
    for (const r of records) {
      checkExtends(r, head, GENESIS);
      head = { seq: r.seq, hash: r.hash };
    }
    for (const r of records) this.records.push(structuredClone(r));
  }

  async *list(opts: AuditListOptions = {}): AsyncIterable<AuditRecord> {
    const from = opts.from ?? 1;
    let left = opts.limit ?? Infinity;
    for (const r of this.records) {
      if (left <= 0) return;
      if (r.seq < from) continue;
      left--;
      yield structuredClone(r);
    }
  }

  async head(): Promise<AuditHead | undefined> {
    const last = this.records[this.records.length - 1];
    return last ? { seq: last.seq, hash: last.hash } : undefined;
  }

  async close(): Promise<void> {}
}

/**
 * The audit log names every signer: only its owner may read it. The database file is created 0600
 * (whatever the umask) before SQLite opens it, and SQLite gives its -wal and -shm files the
 * database file's mode; files an earlier version left 0644 are narrowed here.
 */
function restrictToOwner(path: string): void {
  if (path === ':memory:' || path.startsWith('file:')) return;
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  for (const side of ['-wal', '-shm', '-journal']) {
    try {
      chmodSync(`${path}${side}`, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

export interface SqliteAuditStoreOptions {
  /** Open read-only (for `waxseal audit list|verify|export`). */
  readOnly?: boolean;
  /** How long a writer waits for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * node:sqlite store. One table, `audit(seq INTEGER PRIMARY KEY, record TEXT)`, holding each
 * record's canonical JSON. WAL journal with synchronous=FULL: an append is on disk when it returns.
 */
export class SqliteAuditStore implements AuditStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  #closed = false;

  constructor(path: string, opts: SqliteAuditStoreOptions = {}) {
    this.path = path;
    let db: DatabaseSync | undefined;
    try {
      if (!opts.readOnly) {
        mkdirSync(dirname(path), { recursive: true });
        restrictToOwner(path);
      }
      db = new DatabaseSync(path, { readOnly: opts.readOnly ?? false });
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      if (!opts.readOnly) {
        db.exec('PRAGMA journal_mode = WAL');
        db.exec('PRAGMA synchronous = FULL');
        db.exec('CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL) STRICT');
        // After a prune: the last pruned record, which the first kept record chains to.
        db.exec(
          'CREATE TABLE IF NOT EXISTS audit_base (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL) STRICT',
        );
        // After a prune: the signed anchor (signed-anchor.ts) stating where the kept records start.
        db.exec('CREATE TABLE IF NOT EXISTS audit_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), anchor TEXT NOT NULL) STRICT');
      }
    } catch (e) {
      db?.close();
      throw new WaxsealError('ERR_IO', `cannot open audit database ${path}: ${(e as Error).message}`, { cause: e });
    }
    if (!db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get()) {
      db.close();
      throw new WaxsealError('ERR_CONFIG', `${path} is not a Waxseal audit database`);
    }
    this.#db = db;
  }

  // The statements of every append, prepared once (parsing SQL is a per-batch cost otherwise).
  #lastRowStmt: StatementSync | undefined;
  #insertStmt: StatementSync | undefined;

  #lastRow(): { seq: number; record: string } | undefined {
    this.#lastRowStmt ??= this.#db.prepare('SELECT seq, record FROM audit ORDER BY seq DESC LIMIT 1');
    return this.#lastRowStmt.get() as { seq: number; record: string } | undefined;
  }

  #headFromRow(row: { seq: number; record: string } | undefined): AuditHead | undefined {
    if (!row) return this.#baseSync();
    let hash: unknown;
    try {
      hash = (JSON.parse(row.record) as { hash?: unknown }).hash;
    } catch {
      hash = undefined;
    }
    // A corrupt last row is reported by verify(); appending after it would extend garbage.
    if (typeof hash !== 'string')
      throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit log tampered at seq ${row.seq}: last record is unreadable`, {
        detail: { seq: row.seq },
      });
    return { seq: row.seq, hash };
  }

  #baseSync(): AuditHead | undefined {
    // Databases written before pruning existed (opened read-only) may lack the table.
    if (!this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_base'").get()) return undefined;
    const row = this.#db.prepare('SELECT seq, hash FROM audit_base WHERE id = 1').get() as { seq: number; hash: string } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : undefined;
  }

  async base(): Promise<AuditHead | undefined> {
    this.#open();
    return this.#baseSync();
  }

  /** The signed anchor a prune stored (its JSON text), undefined when there is none. */
  signedAnchor(): string | undefined {
    this.#open();
    if (!this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_anchor'").get()) return undefined;
    return (this.#db.prepare('SELECT anchor FROM audit_anchor WHERE id = 1').get() as { anchor: string } | undefined)?.anchor;
  }

  /** The stored record at `seq`, undefined when there is none. */
  recordAt(seq: number): AuditRecord | undefined {
    this.#open();
    const row = this.#db.prepare('SELECT record FROM audit WHERE seq = ?').get(seq) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as AuditRecord) : undefined;
  }

  /**
   * The head of the longest run of records, from the first kept one, all older than `before`
   * (undefined when the first is not). Records are appended in time order, but a clock stepped
   * back could break that: the run ends at the first record not older than `before`.
   */
  lastBefore(before: Date): AuditHead | undefined {
    this.#open();
    const firstNewer = this.#db.prepare("SELECT MIN(seq) AS seq FROM audit WHERE record ->> '$.time' >= ?").get(before.toISOString()) as {
      seq: number | null;
    };
    const row = (
      firstNewer.seq === null
        ? this.#db.prepare('SELECT seq, record FROM audit ORDER BY seq DESC LIMIT 1').get()
        : this.#db.prepare('SELECT seq, record FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT 1').get(firstNewer.seq)
    ) as { seq: number; record: string } | undefined;
    return row ? this.#headFromRow(row) : undefined;
  }

  /**
   * Removes every record up to `through` (which must be stored with that hash) and appends the
   * prune record `makeRecord(head)` builds, in one transaction with the signed anchor that says
   * where the kept chain starts: cutting more records off the start stays detectable.
   */
  prune(through: AuditHead, makeRecord: (head: AuditHead | undefined) => AuditRecord, signedAnchor?: string): AuditRecord {
    this.#open();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const stored = this.recordAt(through.seq);
      if (!stored || stored.hash !== through.hash)
        throw new WaxsealError('ERR_CONFLICT', `audit record ${through.seq} is not stored with hash ${through.hash}`);
      const head = this.#headFromRow(this.#lastRow());
      const record = makeRecord(head);
      checkExtends(record, head, GENESIS);
      this.#db.prepare('INSERT INTO audit (seq, record) VALUES (?, ?)').run(record.seq, encodeRecord(record));
      this.#db.prepare('DELETE FROM audit WHERE seq <= ?').run(through.seq);
      this.#db.prepare('INSERT OR REPLACE INTO audit_base (id, seq, hash) VALUES (1, ?, ?)').run(through.seq, through.hash);
      if (signedAnchor !== undefined) this.#db.prepare('INSERT OR REPLACE INTO audit_anchor (id, anchor) VALUES (1, ?)').run(signedAnchor);
      this.#db.exec('COMMIT');
      return record;
    } catch (e) {
      this.#db.exec('ROLLBACK');
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `audit prune failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async append(record: AuditRecord): Promise<void> {
    this.appendManySync([record]);
  }

  async appendMany(records: readonly AuditRecord[]): Promise<void> {
    this.appendManySync(records);
  }

  /**
   * appendMany on the calling thread (the writer thread calls it directly); `texts`, when given,
   * are the records' canonical JSON already computed (buildRecordText).
   */
  appendManySync(records: readonly AuditRecord[], texts?: readonly string[]): void {
    this.#open();
    // BEGIN IMMEDIATE takes the write lock before reading the head: check-and-insert is atomic
    // against every other connection, in this process or another.
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      let head = this.#headFromRow(this.#lastRow());
      const insert = (this.#insertStmt ??= this.#db.prepare('INSERT INTO audit (seq, record) VALUES (?, ?)'));
      for (const [i, record] of records.entries()) {
        checkExtends(record, head, GENESIS);
        insert.run(record.seq, texts?.[i] ?? encodeRecord(record));
        head = { seq: record.seq, hash: record.hash };
      }
      this.#db.exec('COMMIT');
    } catch (e) {
      this.#db.exec('ROLLBACK');
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_IO', `audit append failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async *list(opts: AuditListOptions = {}): AsyncIterable<AuditRecord> {
    this.#open();
    // Pages by seq so no statement stays open across yields (writers are never blocked long).
    const page = 500;
    let after = (opts.from ?? 1) - 1;
    let left = opts.limit ?? Infinity;
    const stmt = this.#db.prepare('SELECT seq, record FROM audit WHERE seq > ? ORDER BY seq LIMIT ?');
    while (left > 0) {
      const rows = stmt.all(after, Math.min(page, left)) as Array<{ seq: number; record: string }>;
      if (rows.length === 0) return;
      for (const row of rows) {
        let rec: AuditRecord;
        try {
          rec = JSON.parse(row.record) as AuditRecord;
        } catch {
          throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit log tampered at seq ${row.seq}: record is not valid JSON`, {
            detail: { seq: row.seq },
          });
        }
        yield rec;
        after = row.seq;
        left--;
      }
    }
  }

  async head(): Promise<AuditHead | undefined> {
    return this.headSync();
  }

  headSync(): AuditHead | undefined {
    this.#open();
    return this.#headFromRow(this.#lastRow());
  }

  #open(): void {
    if (this.#closed) throw new WaxsealError('ERR_UNAVAILABLE', 'audit store is closed');
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
