// Runs LogDb on its own thread so SQLite's fsyncs and B-tree work never block the event loop.
// Requests are {id, method, args}; replies {id, result} or {id, error: {code, message}}. The
// index follower has a thread of its own (index-worker.ts), so a commit never waits for it.
import { parentPort, workerData } from 'node:worker_threads';
import { WaxsealError } from '@waxseal/core';
import { LogDb, unpackEntries } from './sqlite-db.ts';

const db = new LogDb((workerData as { dataDir: string }).dataDir);

type Method =
  | 'open'
  | 'commit'
  | 'commitPacked'
  | 'findByLeafHash'
  | 'readEntries'
  | 'searchIndex'
  | 'putCheckpoint'
  | 'latestCheckpoint'
  | 'listCheckpoints'
  | 'committedSize'
  | 'close';

parentPort!.on('message', (m: { id: number; method: Method; args: unknown[] }) => {
  try {
    const result =
      m.method === 'commitPacked'
        ? db.commitPacked(m.args[0] as number, unpackEntries(m.args[1] as Uint8Array))
        : (db[m.method] as (...a: unknown[]) => unknown).apply(db, m.args);
    parentPort!.postMessage({ id: m.id, result });
  } catch (e) {
    const err =
      e instanceof WaxsealError
        ? { code: e.code, message: e.message }
        : { code: 'ERR_IO', message: e instanceof Error ? e.message : String(e) };
    parentPort!.postMessage({ id: m.id, error: err });
  }
});
