// The event loop's side of the audit writer thread (writer-worker.ts). record() resolves once the
// record is durable on disk, and rejects when it is not (fail closed: callers that sign release
// nothing then), while the event loop never waits on a disk. On this side a record is a queue
// entry: one batch is in flight at a time, and everything queued while it commits goes over in
// the next message, which the thread commits in one transaction (#schedule).
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ERROR_CODES, WaxsealError, siblingModuleUrl, type ErrorCode } from '@waxseal/core';
import { normaliseEvent, type AuditEvent, type AuditRecord } from './record.ts';

/** Most events written in one transaction. */
export const MAX_AUDIT_BATCH = 4096;

export type WriterRequest = { id: number; events: AuditEvent[] } | { close: true };
/**
 * One request's results, compact (the reply is the thread's per-record cost on the event loop):
 * its stored records are consecutive, so they are given as the first one's seq and prevHash, the
 * batch's time and every hash concatenated (64 hex digits each, in order); each record's prevHash
 * is the hash before it. Events that were not stored take no seq and are listed by index.
 */
export interface WriterReply {
  id: number;
  seq: number;
  prevHash: string;
  time: string;
  hashes: string;
  /** [index of the event in the request, error code, message], in index order. */
  errors?: [number, string, string][];
}

interface Waiting {
  event: AuditEvent;
  /** Called with the stored record, or with nothing when the caller asked for none (append). */
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
  /** The caller wants the record back (record), not just its durability (append). */
  full: boolean;
}

export interface AuditWriterThreadOptions {
  /** Anchor file the thread rewrites after each durable batch; none when undefined. */
  anchorPath?: string | undefined;
  /** How long a commit waits for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number | undefined;
  /**
   * Shortest time between two batches sent to the thread while records keep coming, in ms
   * (default BATCH_INTERVAL_MS): it bounds the commits (and fsyncs) per second under load.
   */
  batchIntervalMs?: number | undefined;
}

/**
 * A commit costs 130-300 us of CPU whatever its size (the fsync and the I/O submission, mostly in
 * the kernel, and the thread's wake-up: measured on a 2-core VM, idle and in a loaded server), a
 * record 6-10 us: a busy signer must not commit one or two records at a time. So a batch goes to
 * the thread when the previous one is acknowledged, and no sooner than BATCH_INTERVAL_MS after
 * it: at most 500 commits a second; a record waits at most that much longer, and only under load
 * (a record after a quiet interval goes at once). Longer intervals save more CPU but cap a
 * closed-loop client: with C requests in flight it cannot pass C / interval requests a second.
 */
export const BATCH_INTERVAL_MS = 2;

export class AuditWriterThread {
  readonly dbPath: string;
  readonly #anchorPath: string | undefined;
  readonly #busyTimeoutMs: number | undefined;
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  #pending: Waiting[] = [];
  /** A scheduled send: after the batch interval, or after this turn. */
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #lastSend = -Infinity;
  readonly #batchIntervalMs: number;
  #nextId = 1;
  readonly #inflight = new Map<number, Waiting[]>();
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(dbPath: string, opts: AuditWriterThreadOptions = {}) {
    this.dbPath = dbPath;
    this.#anchorPath = opts.anchorPath;
    this.#busyTimeoutMs = opts.busyTimeoutMs;
    this.#batchIntervalMs = opts.batchIntervalMs ?? BATCH_INTERVAL_MS;
    this.#start();
  }

  record(event: AuditEvent): Promise<AuditRecord> {
    return this.#enqueue(event, true) as Promise<AuditRecord>;
  }

  /** record() without building the record on this thread: resolves once the record is durable. */
  append(event: AuditEvent): Promise<void> {
    return this.#enqueue(event, false) as Promise<void>;
  }

  #enqueue(event: AuditEvent, full: boolean): Promise<AuditRecord | undefined> {
    if (this.#closing) return Promise.reject(new WaxsealError('ERR_UNAVAILABLE', 'the audit log is closed'));
    return new Promise<AuditRecord | undefined>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject, full });
      this.#schedule();
    });
  }

  /**
   * One batch in flight at a time: records that come while it commits go in the next one, sent
   * when it is acknowledged, and no sooner than batchIntervalMs after the previous one. Otherwise
   * after this turn's I/O callbacks, so that every request served in the turn shares the message.
   */
  #schedule(): void {
    if (this.#timer || this.#immediate || this.#pending.length === 0 || this.#inflight.size > 0) return;
    const wait = this.#lastSend + this.#batchIntervalMs - performance.now();
    if (wait > 0) this.#timer = setTimeout(() => this.#send(), wait);
    else this.#immediate = setImmediate(() => this.#send());
  }

  #start(): void {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(siblingModuleUrl(import.meta.url, 'writer-worker'), {
      workerData: { dbPath: this.dbPath, anchorPath: this.#anchorPath, busyTimeoutMs: this.#busyTimeoutMs, port: port2 },
      transferList: [port2],
    });
    port1.on('message', (m: { replies?: WriterReply[] }) => {
      for (const reply of m.replies ?? []) this.#settle(reply);
      this.#idle();
      if (this.#inflight.size === 0) this.#drained?.();
      this.#schedule();
    });
    const stopped = (why: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#port = undefined;
      port1.close();
      const err = new WaxsealError('ERR_UNAVAILABLE', `the audit writer thread stopped (${why}); the records in flight were not written`);
      for (const waiting of this.#inflight.values()) for (const w of waiting) w.reject(err);
      this.#inflight.clear();
      this.#drained?.();
      // Records that were waiting for those go to a new thread.
      this.#schedule();
    };
    worker.on('error', (e) => stopped(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => stopped(`exit ${code}`));
    this.#worker = worker;
    this.#port = port1;
    this.#idle();
  }

  #settle(reply: WriterReply): void {
    const waiting = this.#inflight.get(reply.id);
    if (!waiting) return;
    this.#inflight.delete(reply.id);
    const errors = reply.errors ?? [];
    let e = 0;
    let stored = 0;
    let prevHash = reply.prevHash;
    for (const [i, w] of waiting.entries()) {
      const err = errors[e];
      if (err && err[0] === i) {
        e++;
        w.reject(new WaxsealError((Object.hasOwn(ERROR_CODES, err[1]) ? err[1] : 'ERR_IO') as ErrorCode, err[2]));
        continue;
      }
      const hash = reply.hashes.slice(stored * 64, stored * 64 + 64);
      if (hash.length !== 64) {
        w.reject(new WaxsealError('ERR_INTERNAL', 'the audit writer thread gave no result'));
        continue;
      }
      if (!w.full) (w.resolve as () => void)();
      else
        try {
          w.resolve({ seq: reply.seq + stored, time: reply.time, ...normaliseEvent(w.event), prevHash, hash });
        } catch (x) {
          // The caller changed its event after handing it over; the stored record stands.
          w.reject(x);
        }
      prevHash = hash;
      stored++;
    }
  }

  /** An idle thread does not keep the process alive; one with records in flight does. */
  #idle(): void {
    const busy = this.#inflight.size > 0 || this.#closing !== undefined;
    if (busy) {
      this.#worker?.ref();
      this.#port?.ref();
    } else {
      this.#worker?.unref();
      this.#port?.unref();
    }
  }

  #send(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = this.#immediate = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    this.#lastSend = performance.now();
    // A thread that died (it reported why to the records it had) is replaced for the next ones.
    if (!this.#worker) this.#start();
    const id = this.#nextId++;
    try {
      this.#port!.postMessage({ id, events: batch.map((w) => w.event) } satisfies WriterRequest);
    } catch {
      // An event that cannot be copied to the thread (a function in detail…) fails alone.
      for (const w of batch) {
        const one = this.#nextId++;
        try {
          this.#port!.postMessage({ id: one, events: [w.event] } satisfies WriterRequest);
          this.#inflight.set(one, [w]);
        } catch (e) {
          w.reject(new WaxsealError('ERR_INVALID_INPUT', `audit event is not plain JSON: ${(e as Error).message}`));
        }
      }
      this.#idle();
      return;
    }
    this.#inflight.set(id, batch);
    this.#idle();
  }

  /** Waits for every record asked for so far, then stops the thread. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#idle();
      // Everything asked for so far, without waiting out the batch interval.
      while (this.#pending.length > 0 || this.#inflight.size > 0) {
        if (this.#inflight.size === 0) this.#send();
        if (this.#inflight.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      }
      const worker = this.#worker;
      const port = this.#port;
      if (!worker || !port) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      port.postMessage({ close: true } satisfies WriterRequest);
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      await exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}
