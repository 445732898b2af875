// The audit log every key use and refusal goes through: it numbers and chains records, keeps an
// anchor of the head, verifies and exports the chain, and prunes what has been archived.
import { createHash } from 'node:crypto';
import { WaxsealError, isWaxsealError } from '@waxseal/core';
import { FileAuditAnchor, type AuditAnchor } from './anchor.ts';
import { readSignedAnchor, verifySignedAnchor, type AnchorKey, type AnchorStatement, type SignedAnchor } from './signed-anchor.ts';
import {
  ChainVerifier,
  GENESIS_HASH,
  PRUNE_ACTION,
  buildRecord,
  chainEvents,
  encodeRecord,
  type AuditEvent,
  type AuditHead,
  type AuditRecord,
  type AuditVerifyResult,
} from './record.ts';
import { SqliteAuditStore, type AuditListOptions, type AuditStore } from './store.ts';
import { AuditWriterThread, MAX_AUDIT_BATCH } from './writer.ts';

export { FileAuditAnchor, type AuditAnchor } from './anchor.ts';
export { MAX_AUDIT_BATCH } from './writer.ts';

export interface AuditLogOptions {
  anchor?: AuditAnchor;
  clock?: () => Date;
  /** Appends go through this writer thread (AuditLog.open sets it up) instead of `store`. */
  writer?: AuditWriterThread;
}

export interface AuditOpenOptions {
  /** Anchor file path; default `<db>.anchor.json`; false for none. */
  anchorPath?: string | false;
  readOnly?: boolean;
  /** Stamps records on the event loop's clock: appends then run on the event loop (tests). */
  clock?: () => Date;
  /**
   * Append on a writer thread of its own (default): the commit's fsync and the anchor's never
   * block the event loop. false appends on the calling thread (one-shot tools, tests).
   */
  thread?: boolean;
  /** How long an append waits for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** The first line of an export that starts after pruned records: where its chain starts. */
export interface AuditBaseLine {
  auditBase: AuditHead;
}

/** What the records of a prune carry in `detail`. */
export interface AuditPruneDetail {
  /** The last removed record. */
  through: AuditHead;
  /** Removed: records older than this time. */
  before: string;
  /** The archive holding them, as the operator named it. */
  archive?: string;
}

export class AuditLog {
  readonly store: AuditStore;
  readonly anchor: AuditAnchor | undefined;
  readonly #clock: () => Date;
  readonly #writer: AuditWriterThread | undefined;
  #flushDone: Promise<void> = Promise.resolve();
  #head: AuditHead | undefined | null = null; // null = not read yet

  constructor(store: AuditStore, opts: AuditLogOptions = {}) {
    this.store = store;
    this.anchor = opts.anchor;
    this.#clock = opts.clock ?? (() => new Date());
    this.#writer = opts.writer;
  }

  /**
   * An audit log in a SQLite file (created if missing), with a file anchor next to it by default.
   * Appends run on a writer thread unless `thread: false` or a `clock` is given.
   */
  static open(dbPath: string, opts: AuditOpenOptions = {}): AuditLog {
    const anchorPath = opts.anchorPath === undefined ? `${dbPath}.anchor.json` : opts.anchorPath;
    const readOnly = opts.readOnly ?? false;
    // Created (table, WAL, modes) here, so a bad path fails now rather than at the first record.
    const store = new SqliteAuditStore(dbPath, {
      readOnly,
      ...(opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }),
    });
    const threaded = !readOnly && opts.thread !== false && opts.clock === undefined;
    return new AuditLog(store, {
      ...(anchorPath === false ? {} : { anchor: new FileAuditAnchor(anchorPath) }),
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(threaded
        ? {
            writer: new AuditWriterThread(dbPath, {
              anchorPath: anchorPath === false ? undefined : anchorPath,
              busyTimeoutMs: opts.busyTimeoutMs,
            }),
          }
        : {}),
    });
  }

  /**
   * Appends one event and resolves with the stored record once it is durable. Appends are
   * serialised, and the store refuses any append that does not extend its head, so the chain
   * never forks; when another writer got in first we re-read the head and chain after it.
   * Callers that sign should record before handing out the result and fail if this rejects.
   */
  record(event: AuditEvent): Promise<AuditRecord> {
    if (this.#writer) return this.#writer.record(event);
    // Group commit: events that arrive while a batch is being written go into the next batch,
    // so a busy signer (a TSA, a log) pays one durable write per batch, not per key use.
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (!this.#flushing) this.#flushDone = this.#flush();
    });
  }

  /**
   * record() for callers that need only the durability, not the record (the CA's and the TSA's
   * hooks): on the writer thread, no record is rebuilt on the event loop.
   */
  append(event: AuditEvent): Promise<void> {
    if (this.#writer) return this.#writer.append(event);
    return this.record(event).then(() => undefined);
  }

  readonly #pending: { event: AuditEvent; resolve: (r: AuditRecord) => void; reject: (e: unknown) => void }[] = [];
  #flushing = false;

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, MAX_AUDIT_BATCH);
        try {
          const results = await this.#appendBatch(batch.map((b) => b.event));
          batch.forEach((b, i) => {
            const r = results[i]!;
            if (r instanceof WaxsealError) b.reject(r);
            else b.resolve(r);
          });
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #appendBatch(events: AuditEvent[]): Promise<(AuditRecord | WaxsealError)[]> {
    for (let attempt = 0; ; attempt++) {
      if (this.#head === null) this.#head = await this.store.head();
      const chained = chainEvents(this.#head, events, this.#clock());
      try {
        if (this.store.appendMany) await this.store.appendMany(chained.records);
        else for (const r of chained.records) await this.store.append(r);
      } catch (e) {
        this.#head = null;
        if (isWaxsealError(e, 'ERR_CONFLICT') && attempt < 20) continue;
        throw e;
      }
      this.#head = chained.head;
      // An anchor that lags behind is harmless (verify accepts a longer log); one ahead of the
      // log means records vanished. So anchor after the append is durable, never before.
      if (this.anchor && chained.head && chained.records.length) await this.anchor.write(chained.head);
      return chained.results;
    }
  }

  head(): Promise<AuditHead | undefined> {
    return this.store.head();
  }

  /** Where the records start when earlier ones were pruned (the last pruned record). */
  async base(): Promise<AuditHead | undefined> {
    return this.store.base?.();
  }

  list(opts?: AuditListOptions): AsyncIterable<AuditRecord> {
    return this.store.list(opts);
  }

  /**
   * Walks every record; throws ERR_AUDIT_TAMPERED naming the first bad seq (edited, reordered,
   * deleted or inserted records), or the end of the log when it is shorter than the anchor (or
   * `expectedHead`, a head kept by the caller elsewhere). A pruned log starts after its base,
   * which an `audit.prune` record in the chain (older than the anchor) must name.
   */
  async verify(opts: { expectedHead?: AuditHead; anchorKeys?: readonly AnchorKey[] } = {}): Promise<AuditVerifyResult> {
    const anchor = opts.expectedHead ?? (await this.anchor?.read());
    const base = await this.base();
    const signed = base && base.seq > 0 ? this.#checkSignedAnchor(base, opts.anchorKeys) : undefined;
    const v = new ChainVerifier({ ...(anchor ? { anchor } : {}), ...(base ? { base } : {}), requirePruneRecord: true });
    for await (const r of this.store.list()) v.push(r);
    return { ...v.finish(), ...(signed ? { signed } : {}) };
  }

  /**
   * A pruned log starts where its signed anchor says, signed by a key the verifier trusts: a
   * missing, unsigned or altered anchor, or one naming another cut, is refused.
   */
  #checkSignedAnchor(base: AuditHead, keys: readonly AnchorKey[] | undefined): NonNullable<AuditVerifyResult['signed']> {
    const text = this.store instanceof SqliteAuditStore ? this.store.signedAnchor() : undefined;
    const at = base.seq + 1;
    if (text === undefined)
      throw new WaxsealError(
        'ERR_AUDIT_TAMPERED',
        `audit log tampered at seq ${at}: records up to seq ${base.seq} were removed and no signed anchor says where the log starts`,
        { detail: { seq: at } },
      );
    if (!keys)
      throw new WaxsealError(
        'ERR_INVALID_INPUT',
        `the audit log was pruned (it starts after seq ${base.seq}): it verifies from its signed anchor, against the instance's trusted root`,
      );
    let st: ReturnType<typeof verifySignedAnchor>;
    try {
      st = verifySignedAnchor(JSON.parse(text), keys);
    } catch (e) {
      const why = e instanceof WaxsealError ? e.message : 'signed audit anchor: not JSON';
      throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit log tampered at seq ${at}: ${why}`, { detail: { seq: at }, cause: e });
    }
    if (st.event !== 'prune' || st.through.seq !== base.seq || st.through.hash !== base.hash)
      throw new WaxsealError(
        'ERR_AUDIT_TAMPERED',
        `audit log tampered at seq ${at}: the log starts after seq ${base.seq} but its signed anchor states a prune through seq ${st.through.seq}`,
        { detail: { seq: at } },
      );
    return { event: st.event, from: st.from, through: st.through, time: st.time, signedBy: st.signedBy, ...sha(st.archiveSha256) };
  }

  /**
   * The log as JSON lines (one canonical JSON record per line, each ending in "\n"), up to and
   * including seq `through` when given. A pruned log's export starts with its base line
   * `{"auditBase":{"hash":…,"seq":…}}`: the last record of the archive before it.
   */
  async *export(opts: { through?: number } = {}): AsyncIterable<string> {
    const base = await this.base();
    if (base && base.seq > 0) yield `${JSON.stringify({ auditBase: { hash: base.hash, seq: base.seq } })}\n`;
    for await (const r of this.store.list()) {
      if (opts.through !== undefined && r.seq > opts.through) return;
      yield `${encodeRecord(r)}\n`;
    }
  }

  /** The last record of the run, from the first kept one, of records older than `before`. */
  lastBefore(before: Date): AuditHead | undefined {
    return this.#sqlite('prune').lastBefore(before);
  }

  /**
   * Removes the records up to `through` (which must be stored with that hash) and appends an
   * `audit.prune` record naming it, in one transaction; then the anchor moves to that record.
   * Verification of what remains starts from `through`, vouched for by that record.
   */
  async prune(
    through: AuditHead,
    detail: Omit<AuditPruneDetail, 'through'>,
    actor = 'waxseal audit prune',
    signedAnchor?: SignedAnchor,
  ): Promise<AuditRecord> {
    const store = this.#sqlite('prune');
    const record = store.prune(
      through,
      (head) => buildRecord(head, { actor, action: PRUNE_ACTION, result: 'ok', detail: { ...detail, through } }, this.#clock()),
      signedAnchor ? JSON.stringify(signedAnchor) : undefined,
    );
    this.#head = null;
    if (this.anchor) await this.anchor.write({ seq: record.seq, hash: record.hash });
    return record;
  }

  #sqlite(what: string): SqliteAuditStore {
    if (!(this.store instanceof SqliteAuditStore)) throw new WaxsealError('ERR_CONFIG', `audit ${what} needs the SQLite store`);
    return this.store;
  }

  async close(): Promise<void> {
    await this.#writer?.close();
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

const sha = (h: string | undefined) => (h === undefined ? {} : { archiveSha256: h });

/** The last line of a signed archive: its signed anchor (signed-anchor.ts). */
export interface AuditAnchorLine {
  auditAnchor: SignedAnchor;
}

function isAnchorLine(v: unknown): v is { auditAnchor: unknown } {
  return typeof v === 'object' && v !== null && Object.keys(v).length === 1 && 'auditAnchor' in v;
}

function isBaseLine(v: unknown): v is AuditBaseLine {
  return (
    typeof v === 'object' &&
    v !== null &&
    Object.keys(v).length === 1 &&
    'auditBase' in v &&
    typeof v.auditBase === 'object' &&
    v.auditBase !== null
  );
}

/**
 * Verifies an exported log offline (no database needed): the JSON lines of `AuditLog.export()`,
 * as a string, bytes, or a stream of chunks. Pass the head kept elsewhere as `anchor` to also
 * catch records removed from the end. An archive that starts after pruned records starts from
 * its base line (reported as `base`: the previous archive must end there); archives read one
 * after the other (concatenated) must continue each other. An archive's last line may be its
 * signed anchor (`{"auditAnchor": …}`): it must state where the archive starts and ends and the
 * SHA-256 of the lines before it; its signature is checked when `anchorKeys` are given.
 */
export async function verifyAuditExport(
  jsonLines: string | Uint8Array | Iterable<string> | AsyncIterable<string | Uint8Array>,
  opts: { anchor?: AuditHead; anchorKeys?: readonly AnchorKey[] } = {},
): Promise<AuditVerifyResult> {
  const v = new ChainVerifier(opts.anchor);
  let lineNo = 0;
  // The bytes of the archive being read (since the start or the last anchor line), and where it starts.
  let digest = createHash('sha256');
  let from: AuditHead | undefined;
  let signed: AuditVerifyResult['signed'];
  let archiveSha256: string | undefined;
  for await (const line of lines(jsonLines)) {
    lineNo++;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit export line ${lineNo} is not valid JSON`, { detail: { line: lineNo } });
    }
    if (isAnchorLine(value)) {
      const at = v.current();
      const fail = (why: string) =>
        new WaxsealError('ERR_AUDIT_TAMPERED', `audit export line ${lineNo}: ${why}`, { detail: { line: lineNo, seq: at.seq } });
      let st: AnchorStatement & { signedBy?: string };
      try {
        st = opts.anchorKeys ? verifySignedAnchor(value.auditAnchor, opts.anchorKeys) : readSignedAnchor(value.auditAnchor).statement;
      } catch (e) {
        throw fail((e as Error).message);
      }
      const hex = digest.digest('hex');
      const start = from ?? { seq: 0, hash: GENESIS_HASH };
      if (st.event !== 'export') throw fail(`the signed anchor states a ${st.event}, not an export`);
      if (st.through.seq !== at.seq || st.through.hash !== at.hash)
        throw fail(`the archive ends at seq ${at.seq} but its signed anchor states seq ${st.through.seq}`);
      if (st.from.seq !== start.seq || st.from.hash !== start.hash)
        throw fail(`the archive starts after seq ${start.seq} but its signed anchor states seq ${st.from.seq}`);
      if (st.archiveSha256 !== hex) throw fail('the lines before the signed anchor are not the ones it signed (altered)');
      signed = {
        event: st.event,
        from: st.from,
        through: st.through,
        time: st.time,
        archiveSha256: hex,
        ...(st.signedBy ? { signedBy: st.signedBy } : {}),
      };
      archiveSha256 = hex;
      digest = createHash('sha256');
      from = undefined;
      continue;
    }
    digest.update(`${line}\n`);
    if (isBaseLine(value)) {
      v.setBase(value.auditBase);
      from ??= value.auditBase;
    } else {
      from ??= v.current();
      v.push(value);
    }
  }
  // Lines after the last anchor (or all of them, without one): the digest of what was read.
  if (from !== undefined) archiveSha256 = digest.digest('hex');
  return { ...v.finish(), ...(signed ? { signed } : {}), ...sha(archiveSha256) };
}
