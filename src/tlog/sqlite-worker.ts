// Runs LogDb on its own thread so SQLite's fsyncs and B-tree work never block the event loop.
// Requests are {id, method, args}; replies {id, result} or {id, error: {code, message}}. Between
// requests the thread runs the index follower (see sqlite-db.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { WaxsealError } from '../core/errors.ts';
import { LogDb, unpackEntries } from './sqlite-db.ts';

const db = new LogDb((workerData as { dataDir: string }).dataDir);
let following = false;

function follow(): void {
  if (following) return;
  following = true;
  setImmediate(step);
}

function step(): void {
  try {
    if (db.indexStep(1024) > 0 && db.indexBacklog > 0) {
      setImmediate(step);
      return;
    }
  } catch (e) {
    // The follower retries after the next commit; lookups fall back to the in-memory map.
    process.stderr.write(`log index follower: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  following = false;
}

type Method = 'open' | 'commit' | 'commitPacked' | 'findByLeafHash' | 'readEntries' | 'searchIndex' | 'putCheckpoint' | 'latestCheckpoint' | 'listCheckpoints' | 'committedSize' | 'close';

parentPort!.on('message', (m: { id: number; method: Method; args: unknown[] }) => {
  try {
    const result =
      m.method === 'commitPacked'
        ? db.commit(m.args[0] as number, unpackEntries(m.args[1] as Uint8Array))
        : (db[m.method] as (...a: unknown[]) => unknown).apply(db, m.args);
    parentPort!.postMessage({ id: m.id, result });
    if (m.method === 'commit' || m.method === 'commitPacked' || m.method === 'open') follow();
  } catch (e) {
    const err = e instanceof WaxsealError ? { code: e.code, message: e.message } : { code: 'ERR_IO', message: e instanceof Error ? e.message : String(e) };
    parentPort!.postMessage({ id: m.id, error: err });
  }
});
