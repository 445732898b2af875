// Runs LogDb on its own thread so SQLite's fsyncs and B-tree work never block the event loop.
// Requests are {id, method, args}; replies {id, result} or {id, error: {code, message}}. Between
// requests the thread runs the index follower (see sqlite-db.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { WaxsealError } from '../core/errors.ts';
import { LogDb, unpackEntries } from './sqlite-db.ts';

const db = new LogDb((workerData as { dataDir: string }).dataDir);
// The follower indexes in large steps: the hash-keyed B-trees take random inserts, so a step's
// cost is mostly the pages it dirties, and 2,048 rows dirty barely more pages than 128 do
// (measured: ~60 us per row in steps of ~130 rows, ~19 us in steps of 2-4k). It runs once
// INDEX_STEP_MIN rows are waiting, or INDEX_IDLE_MS after a commit for whatever is left, so at
// low load the lag stays short. A step blocks commits while it runs (one thread, one writer).
const INDEX_STEP_MIN = 1024;
const INDEX_STEP_MAX = 2048;
const INDEX_IDLE_MS = 100;
let stepQueued = false;
let closed = false;
let idleTimer: NodeJS.Timeout | undefined;

function follow(): void {
  if (closed) return;
  if (db.indexBacklog >= INDEX_STEP_MIN) {
    if (!stepQueued) {
      stepQueued = true;
      setImmediate(step);
    }
  } else if (!idleTimer && db.indexBacklog > 0) {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      step();
    }, INDEX_IDLE_MS);
  }
}

function step(): void {
  stepQueued = false;
  if (closed) return;
  try {
    db.indexStep(INDEX_STEP_MAX);
  } catch (e) {
    // The follower retries after the next commit; lookups fall back to the in-memory map.
    process.stderr.write(`log index follower: ${e instanceof Error ? e.message : String(e)}\n`);
    return;
  }
  follow();
}

type Method = 'open' | 'commit' | 'commitPacked' | 'findByLeafHash' | 'readEntries' | 'searchIndex' | 'putCheckpoint' | 'latestCheckpoint' | 'listCheckpoints' | 'committedSize' | 'close';

parentPort!.on('message', (m: { id: number; method: Method; args: unknown[] }) => {
  try {
    const result =
      m.method === 'commitPacked'
        ? db.commit(m.args[0] as number, unpackEntries(m.args[1] as Uint8Array))
        : (db[m.method] as (...a: unknown[]) => unknown).apply(db, m.args);
    if (m.method === 'close') {
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
    }
    parentPort!.postMessage({ id: m.id, result });
    if (m.method === 'commit' || m.method === 'commitPacked' || m.method === 'open') follow();
  } catch (e) {
    const err = e instanceof WaxsealError ? { code: e.code, message: e.message } : { code: 'ERR_IO', message: e instanceof Error ? e.message : String(e) };
    parentPort!.postMessage({ id: m.id, error: err });
  }
});
