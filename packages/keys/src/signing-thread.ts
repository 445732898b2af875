// A dedicated thread that signs with an in-memory key, in batches.
//
// Signing a timestamp or a certificate is ~25 us of ECDSA per request on top of ~25 us of HTTP.
// On the event loop the two add up; on their own thread they overlap, so a server uses a second
// core for its crypto. Batches amortize the message hop: the caller hands over every message of
// one event-loop turn at once and gets every signature back in one message. The key is cloned
// into the worker (node:crypto KeyObjects are transferable); it never leaves the process.
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { WaxsealError, siblingModuleUrl } from '@waxseal/core';

/** Called with one signature per message, in order, or with the error for the whole batch. */
export type BatchCallback = (err: Error | undefined, signatures?: Uint8Array[]) => void;

/** One batch on the wire: the messages back to back, and where each ends. */
export interface PackedBatch {
  id: number;
  data: Uint8Array;
  ends: Uint32Array;
}

export function packMessages(id: number, messages: readonly Uint8Array[]): PackedBatch {
  let total = 0;
  for (const m of messages) total += m.length;
  const data = new Uint8Array(total);
  const ends = new Uint32Array(messages.length);
  let o = 0;
  messages.forEach((m, i) => {
    data.set(m, o);
    o += m.length;
    ends[i] = o;
  });
  return { id, data, ends };
}

export function unpackMessages(b: Pick<PackedBatch, 'data' | 'ends'>): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (const end of b.ends) {
    out.push(b.data.subarray(start, end));
    start = end;
  }
  return out;
}

export class SigningThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, BatchCallback>();
  #next = 0;
  #failure: Error | undefined;
  #closed = false;

  /** `hash` null signs the message itself (Ed25519); otherwise node:crypto's digest name. */
  constructor(key: KeyObject, hash: string | null) {
    this.#worker = new Worker(siblingModuleUrl(import.meta.url, 'signing-thread-worker'), { workerData: { key, hash } });
    // Idle, it must not keep the process alive; sockets with requests in flight do that.
    this.#worker.unref();
    this.#worker.on('message', (m: PackedBatch | { id: number; error: string }) => {
      const cb = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (!cb) return;
      if ('error' in m) cb(new WaxsealError('ERR_SIGNER', `signing thread: ${m.error}`));
      else cb(undefined, unpackMessages(m));
    });
    this.#worker.on('error', (e) => this.#fail(e));
    this.#worker.on('exit', (code) => this.#fail(new Error(`signing thread exited with code ${code}`)));
  }

  /** False once the thread has failed or been closed: callers then sign on their own thread. */
  get healthy(): boolean {
    return this.#failure === undefined && !this.#closed;
  }

  signMany(messages: readonly Uint8Array[], done: BatchCallback): void {
    if (!this.healthy) {
      done(this.#failure ?? new WaxsealError('ERR_SIGNER', 'signing thread is closed'));
      return;
    }
    const id = this.#next++;
    const batch = packMessages(id, messages);
    this.#pending.set(id, done);
    this.#worker.postMessage(batch, [batch.data.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer]);
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.#failure ??= e instanceof WaxsealError ? e : new WaxsealError('ERR_SIGNER', `signing thread failed: ${e.message}`, { cause: e });
    this.#failPending(this.#failure);
  }

  #failPending(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const cb of pending) cb(err);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failPending(new WaxsealError('ERR_SIGNER', 'signing thread closed'));
    await this.#worker.terminate();
  }
}
