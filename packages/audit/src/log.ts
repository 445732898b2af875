// The audit log every key use and refusal goes through: it numbers and chains records, keeps an
// anchor of the head, and verifies and exports the chain.
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { WaxsealError, isWaxsealError, toHex } from '@waxseal/core';
import {
  ChainVerifier,
  buildRecord,
  encodeRecord,
  type AuditEvent,
  type AuditHead,
  type AuditRecord,
  type AuditVerifyResult,
} from './record.ts';
import { SqliteAuditStore, type AuditListOptions, type AuditStore } from './store.ts';

/**
 * Keeps the latest head (seq, hash) somewhere other than the log itself, so that removing
 * records from the end of the log (which leaves a valid shorter chain) is detected.
 */
export interface AuditAnchor {
  read(): Promise<AuditHead | undefined>;
  write(head: AuditHead): Promise<void>;
}

/**
 * Anchor in a small JSON file `{"seq":N,"hash":"…","time":"…"}`, replaced atomically after every
 * append. It only helps if an attacker who can rewrite the database cannot also rewrite this file:
 * put it on another volume or host, or copy it regularly to write-once storage (docs/audit.md).
 */
export class FileAuditAnchor implements AuditAnchor {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async read(): Promise<AuditHead | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WaxsealError('ERR_IO', `cannot read audit anchor ${this.path}`, { cause: e });
    }
    try {
      const v = JSON.parse(text) as { seq?: unknown; hash?: unknown };
      if (Number.isSafeInteger(v.seq) && typeof v.hash === 'string') return { seq: v.seq as number, hash: v.hash };
    } catch {
      // fall through
    }
    throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit anchor ${this.path} is unreadable`);
  }

  async write(head: AuditHead): Promise<void> {
    const tmp = `${this.path}.${toHex(randomBytes(6))}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify({ seq: head.seq, hash: head.hash, time: new Date().toISOString() })}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }
}

export interface AuditLogOptions {
  anchor?: AuditAnchor;
  clock?: () => Date;
}

export interface AuditOpenOptions {
  /** Anchor file path; default `<db>.anchor.json`; false for none. */
  anchorPath?: string | false;
  readOnly?: boolean;
  clock?: () => Date;
}

/** Most events written in one transaction. */
export const MAX_AUDIT_BATCH = 512;

export class AuditLog {
  readonly store: AuditStore;
  readonly anchor: AuditAnchor | undefined;
  readonly #clock: () => Date;
  #flushDone: Promise<void> = Promise.resolve();
  #head: AuditHead | undefined | null = null; // null = not read yet

  constructor(store: AuditStore, opts: AuditLogOptions = {}) {
    this.store = store;
    this.anchor = opts.anchor;
    this.#clock = opts.clock ?? (() => new Date());
  }

  /** An audit log in a SQLite file (created if missing), with a file anchor next to it by default. */
  static open(dbPath: string, opts: AuditOpenOptions = {}): AuditLog {
    const anchorPath = opts.anchorPath === undefined ? `${dbPath}.anchor.json` : opts.anchorPath;
    return new AuditLog(new SqliteAuditStore(dbPath, { readOnly: opts.readOnly ?? false }), {
      ...(anchorPath === false ? {} : { anchor: new FileAuditAnchor(anchorPath) }),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  }

  /**
   * Appends one event and returns the stored record. Appends are serialised in this process,
   * and the store refuses any append that does not extend its head, so the chain never forks;
   * when another writer got in first we re-read the head and chain after it.
   * Callers that sign should record before handing out the result and fail if this throws.
   */
  record(event: AuditEvent): Promise<AuditRecord> {
    // Group commit: events that arrive while a batch is being written go into the next batch,
    // so a busy signer (a TSA, a log) pays one durable write per batch, not per key use.
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (!this.#flushing) this.#flushDone = this.#flush();
    });
  }

  readonly #pending: { event: AuditEvent; resolve: (r: AuditRecord) => void; reject: (e: unknown) => void }[] = [];
  #flushing = false;

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, MAX_AUDIT_BATCH);
        try {
          const records = await this.#appendBatch(batch.map((b) => b.event));
          batch.forEach((b, i) => b.resolve(records[i]!));
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #appendBatch(events: AuditEvent[]): Promise<AuditRecord[]> {
    for (let attempt = 0; ; attempt++) {
      if (this.#head === null) this.#head = await this.store.head();
      const time = this.#clock();
      const records: AuditRecord[] = [];
      let head = this.#head;
      for (const event of events) {
        const rec = buildRecord(head, event, time);
        records.push(rec);
        head = { seq: rec.seq, hash: rec.hash };
      }
      try {
        if (this.store.appendMany) await this.store.appendMany(records);
        else for (const r of records) await this.store.append(r);
      } catch (e) {
        this.#head = null;
        if (isWaxsealError(e, 'ERR_CONFLICT') && attempt < 20) continue;
        throw e;
      }
      this.#head = head;
      // An anchor that lags behind is harmless (verify accepts a longer log); one ahead of the
      // log means records vanished. So anchor after the append is durable, never before.
      if (this.anchor && head) await this.anchor.write(head);
      return records;
    }
  }

  head(): Promise<AuditHead | undefined> {
    return this.store.head();
  }

  list(opts?: AuditListOptions): AsyncIterable<AuditRecord> {
    return this.store.list(opts);
  }

  /**
   * Walks every record; throws ERR_AUDIT_TAMPERED naming the first bad seq (edited, reordered,
   * deleted or inserted records), or the end of the log when it is shorter than the anchor (or
   * `expectedHead`, a head kept by the caller elsewhere).
   */
  async verify(opts: { expectedHead?: AuditHead } = {}): Promise<AuditVerifyResult> {
    const anchor = opts.expectedHead ?? (await this.anchor?.read());
    const v = new ChainVerifier(anchor);
    for await (const r of this.store.list()) v.push(r);
    return v.finish();
  }

  /** The log as JSON lines (one canonical JSON record per line, each ending in "\n"). */
  async *export(): AsyncIterable<string> {
    for await (const r of this.store.list()) yield `${encodeRecord(r)}\n`;
  }

  async close(): Promise<void> {
    await this.#flushDone;
    await this.store.close();
  }
}

async function* lines(input: string | Uint8Array | Iterable<string> | AsyncIterable<string | Uint8Array>): AsyncIterable<string> {
  if (typeof input === 'string') {
    yield* input.split('\n');
    return;
  }
  if (input instanceof Uint8Array) {
    yield* new TextDecoder('utf-8', { fatal: true }).decode(input).split('\n');
    return;
  }
  if (!(Symbol.asyncIterator in input)) {
    // A list of lines (each may itself hold several).
    for (const l of input as Iterable<string>) yield* l.split('\n');
    return;
  }
  // Chunks (e.g. a file stream): re-split on newlines.
  const dec = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  for await (const chunk of input as AsyncIterable<string | Uint8Array>) {
    rest += typeof chunk === 'string' ? chunk : dec.decode(chunk, { stream: true });
    const parts = rest.split('\n');
    rest = parts.pop()!;
    yield* parts;
  }
  rest += dec.decode();
  yield rest;
}

/**
 * Verifies an exported log offline (no database needed): the JSON lines of `AuditLog.export()`,
 * as a string, bytes, or a stream of chunks. Pass the head kept elsewhere as `anchor` to also
 * catch records removed from the end.
 */
export async function verifyAuditExport(
  jsonLines: string | Uint8Array | Iterable<string> | AsyncIterable<string | Uint8Array>,
  opts: { anchor?: AuditHead } = {},
): Promise<AuditVerifyResult> {
  const v = new ChainVerifier(opts.anchor);
  let lineNo = 0;
  for await (const line of lines(jsonLines)) {
    lineNo++;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit export line ${lineNo} is not valid JSON`, { detail: { line: lineNo } });
    }
    v.push(value);
  }
  return v.finish();
}
