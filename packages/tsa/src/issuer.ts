// Issuing timestamps: TimestampIssuer schedules the signatures of the tokens timestamp.ts builds.
// With an in-memory key, requests are batched per event-loop turn and shared between this thread
// and a signing thread; other signers (HSM, KMS) sign one request at a time.
import { WaxsealError } from '@waxseal/core';
import { KeyObjectSigner, type Signer, type SigningThread } from '@waxseal/keys';
import { TimestampTokenBuilder, type PreparedToken, type TimestampRequest, type TimestampTokenOptions } from './timestamp.ts';

export interface TimestampIssuerOptions extends TimestampTokenOptions {
  signer: Signer;
  /**
   * Sign on the calling thread with signSync when the signer is a KeyObjectSigner (default
   * true: no promise hop). Set false when the signer's async sign() runs off the event loop
   * (e.g. on the libuv threadpool), which lets signing use the other cores.
   */
  syncSigning?: boolean;
  /**
   * With an in-memory key, sign on a thread of its own (default false here; the TSA servers turn
   * it on): HTTP and signing then overlap on two cores. Falls back to the calling thread if the
   * signing thread fails. `true` starts a thread for the signer's key; a SigningThread given here
   * is used as is (it must hold the same key) and closed with the issuer.
   */
  signingThread?: boolean | SigningThread;
  /**
   * Most requests signed back to back before the event loop gets a turn again (default 16):
   * larger batches keep the signing code hotter in the caches, smaller ones send the first
   * answers sooner.
   */
  maxBatch?: number;
}

/** Called with (undefined, DER TimeStampResp) or with the error (a WaxsealError for bad requests). */
export type IssueCallback = (err: unknown, der?: Uint8Array) => void;

/**
 * Most requests out on the signing thread at once (see #drain). Beyond this the event loop signs
 * the rest itself: measured on 2 cores at 64 connections, 32 kept both threads busy (16 and 64
 * left one of them waiting on the other).
 */
const THREAD_IN_FLIGHT = 32;

interface QueuedRequest {
  req: TimestampRequest;
  now: Date;
  done: IssueCallback;
}

/** A token ready to sign, or why the request was refused. */
type Prepared = PreparedToken | { error: unknown };

function deliver(q: QueuedRequest, r: Uint8Array | { error: unknown }): void {
  if (r instanceof Uint8Array) q.done(undefined, r);
  else q.done(r.error);
}

/** Issues RFC 3161 responses for one TSA key and chain. */
export class TimestampIssuer {
  readonly signer: Signer;
  /** Builds the tokens (policies, chain, constant encodings); check() judges a request. */
  readonly tokens: TimestampTokenBuilder;

  readonly #signSync: ((m: Uint8Array) => Uint8Array) | undefined;
  #thread: SigningThread | undefined;
  readonly #queue: QueuedRequest[] = [];
  readonly #maxBatch: number;
  #threadInFlight = 0;

  constructor(o: TimestampIssuerOptions) {
    this.signer = o.signer;
    this.tokens = new TimestampTokenBuilder(o);
    this.#maxBatch = o.maxBatch ?? 16;
    if (!Number.isInteger(this.#maxBatch) || this.#maxBatch < 1)
      throw new WaxsealError('ERR_CONFIG', `maxBatch must be a positive integer, got ${o.maxBatch}`);
    this.#signSync = o.signer instanceof KeyObjectSigner && (o.syncSigning ?? true) ? o.signer.signSync.bind(o.signer) : undefined;
    if (this.#signSync && o.signingThread && o.signer instanceof KeyObjectSigner) {
      this.#thread = o.signingThread === true ? o.signer.startSigningThread() : o.signingThread;
    }
  }

  /** True when the signer signs synchronously (an in-memory key), so issueSync() works. */
  get canIssueSync(): boolean {
    return this.#signSync !== undefined;
  }

  /**
   * Issues a granted TimeStampResp (DER) for `req` at time `now`. With an in-memory key the
   * request joins the batch of the current event-loop turn (see enqueue).
   */
  issue(req: TimestampRequest, now: Date = new Date()): Promise<Uint8Array> {
    return new Promise((resolve, reject) => this.enqueue(req, now, (err, der) => (err === undefined ? resolve(der!) : reject(err))));
  }

  /**
   * Issues a token and calls `done` with it or with the error. With an in-memory key, every
   * request enqueued during one event-loop turn is signed back to back in a setImmediate
   * callback: the ECDSA code and its precomputed tables then stay in the CPU caches from one
   * signature to the next, which halves the cost per token under load compared with signing
   * each request between HTTP parsing and writing. Other signers (HSM, KMS) sign one by one.
   */
  enqueue(req: TimestampRequest, now: Date, done: IssueCallback): void {
    if (!this.#signSync) {
      this.#issueAsync(req, now).then(
        (der) => done(undefined, der),
        (e: unknown) => done(e),
      );
      return;
    }
    this.#queue.push({ req, now, done });
    if (this.#queue.length === 1) setImmediate(this.#drain);
  }

  // Bounded batches, so a burst cannot hold the event loop for long.
  readonly #drain = (): void => {
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (this.#queue.length > 0) setImmediate(this.#drain);
    // Work sharing: the signing thread takes what it can keep busy with; the rest is signed here,
    // so neither thread waits on the other while requests are queued.
    let local = batch;
    if (this.#thread?.healthy) {
      const room = Math.max(0, THREAD_IN_FLIGHT - this.#threadInFlight);
      if (room > 0) {
        this.#issueOnThread(this.#thread, batch.slice(0, room));
        local = batch.slice(room);
        if (local.length === 0) return;
      }
    }
    const results = this.issueMany(local);
    for (let i = 0; i < local.length; i++) deliver(local[i]!, results[i]!);
  };

  // Prepared here, signed on the signing thread, finished here when the signatures come back.
  #issueOnThread(thread: SigningThread, batch: QueuedRequest[]): void {
    const prepared = batch.map(({ req, now }) => this.#prepareChecked(req, now));
    const toSign: Uint8Array[] = [];
    for (const p of prepared) if (!('error' in p)) toSign.push(p.signedAttrs);
    if (toSign.length === 0) {
      batch.forEach((q, i) => deliver(q, prepared[i] as { error: unknown }));
      return;
    }
    this.#threadInFlight += batch.length;
    thread.signMany(toSign, (err, signatures) => {
      this.#threadInFlight -= batch.length;
      if (err !== undefined) {
        // The thread failed: sign the prepared tokens on this thread rather than lose them.
        const results = this.#signAndFinish(batch, prepared);
        for (let i = 0; i < batch.length; i++) deliver(batch[i]!, results[i]!);
        return;
      }
      let k = 0;
      batch.forEach((q, i) => {
        const p = prepared[i]!;
        deliver(q, 'error' in p ? p : this.tokens.finish(p, signatures![k++]!, q.req.certReq));
      });
    });
  }

  #prepareChecked(req: TimestampRequest, now: Date): Prepared {
    try {
      this.tokens.check(req);
      return this.tokens.prepare(req, now);
    } catch (error) {
      return { error };
    }
  }

  /** Stops the signing thread, if any. */
  async close(): Promise<void> {
    const t = this.#thread;
    this.#thread = undefined;
    await t?.close();
  }

  /**
   * Issues tokens for several requests at once (in-memory keys): all are prepared, then all are
   * signed back to back, then all are assembled. Each result is the DER response or the error
   * for that request.
   */
  issueMany(items: readonly { req: TimestampRequest; now: Date }[]): (Uint8Array | { error: unknown })[] {
    return this.#signAndFinish(
      items,
      items.map(({ req, now }) => this.#prepareChecked(req, now)),
    );
  }

  // Signs prepared tokens back to back on this thread, then assembles them (one result per item).
  #signAndFinish(items: readonly { req: TimestampRequest }[], prepared: readonly Prepared[]): (Uint8Array | { error: unknown })[] {
    const signSync = this.#signSync;
    if (!signSync) throw new TypeError('issueMany needs a signer that signs synchronously (KeyObjectSigner)');
    const signatures: (Uint8Array | { error: unknown })[] = prepared.map((p) => {
      if ('error' in p) return p;
      try {
        return signSync(p.signedAttrs);
      } catch (e) {
        return { error: signerFailure(e) };
      }
    });
    return items.map(({ req }, i) => {
      const p = prepared[i]!;
      const sig = signatures[i]!;
      if ('error' in p) return p;
      if (!(sig instanceof Uint8Array)) return sig;
      return this.tokens.finish(p, sig, req.certReq);
    });
  }

  /** issue() without the promise or the batching, for in-memory keys (see canIssueSync). */
  issueSync(req: TimestampRequest, now: Date = new Date()): Uint8Array {
    const [r] = this.issueMany([{ req, now }]);
    if (r instanceof Uint8Array) return r;
    throw r!.error;
  }

  #issueAsync(req: TimestampRequest, now: Date): Promise<Uint8Array> {
    let prepared: PreparedToken;
    try {
      this.tokens.check(req);
      prepared = this.tokens.prepare(req, now);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.signer.sign(prepared.signedAttrs).then(
      (sig) => this.tokens.finish(prepared, sig, req.certReq),
      (e: unknown) => {
        throw signerFailure(e);
      },
    );
  }
}

function signerFailure(e: unknown): WaxsealError {
  if (e instanceof WaxsealError) return e;
  return new WaxsealError('ERR_SIGNER', `the TSA signer failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
