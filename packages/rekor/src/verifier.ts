// Signature checks for submitted entries. Signatures over messages go straight to node:crypto;
// P-256 signatures over digests (hashedrekord) are batched and checked by OpenSSL through the
// native addon (or fastverify.ts's ECDH route where it is not built), on the calling thread or
// on a small worker pool; other key types go through core verifySignature.
import { Worker } from 'node:worker_threads';
import {
  rawEcPoint,
  verifySignature,
  toBase64,
  ecdsaJobSize,
  packEcdsaJob,
  siblingModuleUrl,
  type HashName,
  type PublicKeyInfo,
} from '@waxseal/core';
import { verifyP256Packed } from './fastverify.ts';

const JOB_SIZE = ecdsaJobSize(256);

export interface VerifierOptions {
  /** Worker threads for P-256 digest checks; 0 runs them on the calling thread (batched). */
  workers?: number;
}

interface Job {
  point: Uint8Array;
  digest: Uint8Array;
  signature: Uint8Array;
  resolve: (ok: boolean) => void;
}

const pointCache = new Map<string, Uint8Array>();

function p256Point(key: PublicKeyInfo): Uint8Array {
  const k = toBase64(key.spki);
  let p = pointCache.get(k);
  if (!p) {
    p = rawEcPoint(key);
    if (pointCache.size > 4096) pointCache.clear();
    pointCache.set(k, p);
  }
  return p;
}

const MAX_BATCH = 512;
/** Jobs that trigger an immediate send to a worker. */
const WORKER_BATCH = 64;

export class SignatureVerifier {
  readonly #workers: Worker[] = [];
  readonly #pendingByWorker = new Map<number, (r: Uint8Array) => void>();
  #queue: Job[] = [];
  #flushScheduled = false;
  #next = 0;
  #seq = 0;

  constructor(opts: VerifierOptions = {}) {
    const n = Math.max(0, Math.floor(opts.workers ?? 0));
    for (let i = 0; i < n; i++) {
      const w = new Worker(siblingModuleUrl(import.meta.url, 'verify-worker'));
      w.unref();
      w.on('message', (m: { id: number; result: Uint8Array }) => {
        const cb = this.#pendingByWorker.get(m.id);
        this.#pendingByWorker.delete(m.id);
        cb?.(m.result);
      });
      w.on('error', () => {
        // A crashed worker fails its batches closed (every signature "invalid" would be wrong:
        // reject with false is safe, nothing is accepted unverified).
        for (const [id, cb] of this.#pendingByWorker) {
          this.#pendingByWorker.delete(id);
          cb(new Uint8Array(MAX_BATCH));
        }
      });
      this.#workers.push(w);
    }
  }

  /** Verifies a signature over a message (node:crypto hashes it). */
  verifyMessage(key: PublicKeyInfo, message: Uint8Array, signature: Uint8Array, hash?: HashName): boolean {
    return verifySignature(key, message, signature, hash ? { hash } : {});
  }

  /**
   * Verifies a signature over a digest: ECDSA/RSA over the digest, Ed25519 as Ed25519ph.
   * P-256 checks are batched (and optionally run on workers).
   */
  verifyDigest(key: PublicKeyInfo, hash: HashName, digest: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (key.kind !== 'ecdsa-p256') return Promise.resolve(verifySignature(key, digest, signature, { hash, prehashed: true }));
    return new Promise((resolve) => {
      this.#queue.push({ point: p256Point(key), digest, signature, resolve });
      if (this.#queue.length >= (this.#workers.length > 0 ? WORKER_BATCH : MAX_BATCH)) this.#flush();
      else if (!this.#flushScheduled) {
        // Collect what arrives within a few ms: bigger batches amortise the modular inversions
        // and the messages to the worker (each costs tens of microseconds on both threads).
        this.#flushScheduled = true;
        setTimeout(() => this.#flush(), this.#workers.length > 0 ? 4 : 0);
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    while (this.#queue.length > 0) {
      const jobs = this.#queue.splice(0, MAX_BATCH);
      const buf = new Uint8Array(jobs.length * JOB_SIZE);
      const packed: Job[] = [];
      for (const j of jobs) {
        if (packEcdsaJob(256, j.point, j.digest, j.signature, buf, packed.length * JOB_SIZE)) packed.push(j);
        else j.resolve(false);
      }
      if (packed.length === 0) continue;
      const deliver = (result: Uint8Array) => packed.forEach((j, i) => j.resolve(result[i] === 1));
      if (this.#workers.length === 0) {
        deliver(verifyP256Packed(buf, packed.length));
      } else {
        const w = this.#workers[this.#next++ % this.#workers.length]!;
        const id = ++this.#seq;
        this.#pendingByWorker.set(id, deliver);
        w.postMessage({ id, buf, count: packed.length }, [buf.buffer]);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers.length = 0;
    for (const [id, cb] of this.#pendingByWorker) {
      this.#pendingByWorker.delete(id);
      cb(new Uint8Array(MAX_BATCH));
    }
  }
}
