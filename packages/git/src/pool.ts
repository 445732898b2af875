// Policy evaluation of many commits across cores: worker threads, each with its own Verifier
// built from the same trusted root and options, fed batches of raw objects. The caller's thread
// evaluates too (it has everything loaded while the workers start), so a short range never waits
// for a worker, and a long one uses every core. Every object gets exactly the checks
// evaluateObject makes; only where they run changes.
import { Worker } from 'node:worker_threads';
import type { TrustedRoot } from '@waxseal/bundle';
import type { VerifierOptions } from '@waxseal/verify';
import { evaluateObject, type LoadedKeyAuthority, type ObjectVerdict, type PolicyContext } from './evaluate.ts';
import type { SourcePolicy } from './policy.ts';

export interface RawObject {
  id: string;
  type: 'commit' | 'tag';
  raw: Uint8Array;
}

/** What a worker needs to rebuild the context (structured-cloneable). */
export interface WorkerSetup {
  trustedRoot: TrustedRoot | undefined;
  verifierOptions: VerifierOptions | undefined;
  policy: SourcePolicy;
  keys: LoadedKeyAuthority[];
  matchCommitter: boolean;
}

export interface EvaluateManyOptions {
  /**
   * Worker threads besides the calling thread (0: evaluate here only), or threads started
   * earlier with startEvaluators (they load their modules while the caller does its set-up).
   */
  workers: number | EvaluatorThreads;
  /** Objects per batch handed to a worker. */
  batch?: number;
}

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './pool-worker.ts' : './pool-worker.js', import.meta.url);

/**
 * Worker threads for evaluateMany, started ahead of it: a thread's start (a Node.js environment
 * and the verifier's modules, ~200 ms cold) then overlaps the caller's own (policy, trust, git).
 * Hand them to one evaluateMany, which ends them; close() ends them when they were not needed.
 */
export class EvaluatorThreads {
  readonly threads: readonly EvaluatorThread[];
  constructor(n: number) {
    this.threads = Array.from({ length: n }, () => new EvaluatorThread());
  }
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

/** One worker and what it said before evaluateMany listened: ready (modules loaded) or gone. */
class EvaluatorThread {
  readonly worker = new Worker(WORKER_URL);
  ready = false;
  gone = false;
  constructor() {
    this.worker.on('message', (m: { ready?: true }) => {
      if (m.ready) this.ready = true;
    });
    this.worker.once('error', () => (this.gone = true));
    this.worker.once('exit', () => (this.gone = true));
  }
}

export function startEvaluators(n: number): EvaluatorThreads {
  return new EvaluatorThreads(n);
}

/**
 * Evaluates `objects` (an async stream, e.g. from `git cat-file --batch`; `total` of them) against
 * the policy. Verdicts come back in the order of the stream.
 */
export async function evaluateMany(
  objects: AsyncIterable<RawObject>,
  total: number,
  ctx: PolicyContext,
  o: EvaluateManyOptions,
): Promise<ObjectVerdict[]> {
  const verdicts = new Array<ObjectVerdict>(total);
  const queue: { index: number; obj: RawObject }[] = [];
  let received = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const batchSize = o.batch ?? 32;

  // The producer: the stream fills the queue.
  const producing = (async () => {
    try {
      for await (const obj of objects) {
        queue.push({ index: received++, obj });
        notify();
      }
    } catch (e) {
      failure = e;
    } finally {
      ended = true;
      notify();
    }
  })();
  const next = async (n: number): Promise<{ index: number; obj: RawObject }[] | undefined> => {
    for (;;) {
      if (failure) throw failure;
      if (queue.length >= n || (ended && queue.length > 0)) return queue.splice(0, n);
      if (ended) return undefined;
      await new Promise<void>((r) => {
        const prev = wake;
        wake = () => {
          prev?.();
          r();
        };
      });
    }
  };

  const workers: Promise<void>[] = [];
  const threads = typeof o.workers === 'number' ? new EvaluatorThreads(o.workers).threads : o.workers.threads;
  if (threads.length > 0) {
    const setup: WorkerSetup = {
      trustedRoot: ctx.verifier?.trustedRoot,
      verifierOptions: ctx.verifier ? { ...ctx.verifier.options } : undefined,
      policy: ctx.policy,
      keys: ctx.keys,
      matchCommitter: ctx.matchCommitter === true,
    };
    for (const thread of threads) {
      const t = thread.worker;
      workers.push(
        new Promise<void>((resolve) => {
          if (thread.gone) return resolve();
          t.postMessage({ setup });
          let inFlight: { index: number; obj: RawObject }[] = [];
          const feed = async () => {
            // A failed stream ends the feeding; the calling thread reports the failure.
            const b = await next(batchSize).catch(() => undefined);
            if (!b) return resolve(void t.postMessage({ done: true }));
            inFlight = b;
            t.postMessage({ objects: b.map((x) => x.obj) });
          };
          // Fed once it is ready (it says so when its modules are loaded), then after each batch.
          t.on('message', (m: { ready?: true; verdicts?: ObjectVerdict[] }) => {
            if (m.verdicts) inFlight.forEach((x, i) => (verdicts[x.index] = m.verdicts![i]!));
            inFlight = [];
            void feed();
          });
          if (thread.ready) void feed();
          t.on('error', () => {
            // A worker that fails gives its batch back; the calling thread finishes the work.
            queue.unshift(...inFlight);
            inFlight = [];
            notify();
            resolve();
          });
          t.on('exit', () => {
            if (inFlight.length) queue.unshift(...inFlight), (inFlight = []), notify();
            resolve();
          });
        }),
      );
    }
  }
  // The calling thread: smaller batches, yielding between them so that the stream and the
  // workers' messages are served.
  try {
    for (;;) {
      const b = await next(Math.max(1, batchSize >> 2));
      if (!b) break;
      for (const x of b) verdicts[x.index] = await evaluateObject(x.obj.id, x.obj.type, x.obj.raw, ctx);
      await new Promise<void>((r) => setImmediate(r));
    }
    await producing;
    await Promise.all(workers);
    // Batches given back by a failed worker after this thread finished.
    for (const x of queue.splice(0)) verdicts[x.index] = await evaluateObject(x.obj.id, x.obj.type, x.obj.raw, ctx);
  } finally {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
  if (failure) throw failure;
  if (received !== total) throw new Error(`expected ${total} objects, got ${received}`);
  return verdicts;
}
