// The event loop's side of the audit writer thread (writer-worker.ts). record() resolves once the
// record is durable on disk, and rejects when it is not (fail closed: callers that sign release
// nothing then), while the event loop never waits on a disk. Events that arrive in the same turn
// of the event loop go over in one message; the thread commits whatever has queued up meanwhile
// in one transaction.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ERROR_CODES, WaxsealError, siblingModuleUrl, type ErrorCode } from '@waxseal/core';
import { normaliseEvent, type AuditEvent, type AuditRecord } from './record.ts';

/** Most events written in one transaction. */
export const MAX_AUDIT_BATCH = 4096;

export type WriterRequest = { id: number; events: AuditEvent[] } | { close: true };
/** A stored record's own fields (the event's are the caller's), or why the event was not stored. */
export type WriterResult = Pick<AuditRecord, 'seq' | 'time' | 'prevHash' | 'hash'> | { error: { code: string; message: string } };
export interface WriterReply {
  id: number;
  results: WriterResult[];
}

interface Waiting {
  event: AuditEvent;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
}

export interface AuditWriterThreadOptions {
  /** Anchor file the thread rewrites after each durable batch; none when undefined. */
  anchorPath?: string | undefined;
  /** How long a commit waits for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number | undefined;
}

export class AuditWriterThread {
  readonly dbPath: string;
  readonly #anchorPath: string | undefined;
  readonly #busyTimeoutMs: number | undefined;
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  #pending: Waiting[] = [];
  #scheduled = false;
  #nextId = 1;
  readonly #inflight = new Map<number, Waiting[]>();
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(dbPath: string, opts: AuditWriterThreadOptions = {}) {
    this.dbPath = dbPath;
    this.#anchorPath = opts.anchorPath;
    this.#busyTimeoutMs = opts.busyTimeoutMs;
    this.#start();
  }

  record(event: AuditEvent): Promise<AuditRecord> {
    if (this.#closing) return Promise.reject(new WaxsealError('ERR_UNAVAILABLE', 'the audit log is closed'));
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After this turn's I/O callbacks: every request served in it shares one message.
        setImmediate(() => this.#send());
      }
    });
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
    waiting.forEach((w, i) => {
      const r = reply.results[i];
      if (r && 'hash' in r) w.resolve({ seq: r.seq, time: r.time, ...normaliseEvent(w.event), prevHash: r.prevHash, hash: r.hash });
      else {
        const e = r?.error ?? { code: 'ERR_INTERNAL', message: 'the audit writer thread gave no result' };
        w.reject(new WaxsealError((Object.hasOwn(ERROR_CODES, e.code) ? e.code : 'ERR_IO') as ErrorCode, e.message));
      }
    });
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
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
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
      if (this.#scheduled) this.#send();
      if (this.#inflight.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
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
