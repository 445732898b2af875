// The index follower's thread: fills index.db (dedup and search keys) from committed entries,
// in steps of up to INDEX_STEP_MAX rows once INDEX_STEP_MIN are waiting, or INDEX_IDLE_MS after
// the last commit for whatever is left, so at low load the lag stays short. It is told the
// committed size after each commit ({committed}); {close} ends it after the current step.
import { parentPort, workerData } from 'node:worker_threads';
import { IndexFollower, INDEX_STEP_MAX } from './sqlite-db.ts';

const INDEX_STEP_MIN = 1024;
const INDEX_IDLE_MS = 100;

const follower = new IndexFollower((workerData as { dataDir: string }).dataDir);
let committed = 0;
let indexed = follower.cursor();
let stepQueued = false;
let idleTimer: NodeJS.Timeout | undefined;
let closed = false;

function step(): void {
  stepQueued = false;
  if (closed) return;
  try {
    follower.step(INDEX_STEP_MAX);
    indexed = follower.cursor();
  } catch (e) {
    // Retried after the next commit; lookups meanwhile use the committer's in-memory map.
    process.stderr.write(`log index follower: ${e instanceof Error ? e.message : String(e)}\n`);
    return;
  }
  follow();
}

function follow(): void {
  if (closed) return;
  const backlog = committed - indexed;
  if (backlog >= INDEX_STEP_MIN) {
    if (!stepQueued) {
      stepQueued = true;
      setImmediate(step);
    }
  } else if (backlog > 0 && !idleTimer) {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      step();
    }, INDEX_IDLE_MS);
  }
}

parentPort!.on('message', (m: { committed?: number; close?: boolean }) => {
  if (m.close) {
    closed = true;
    if (idleTimer) clearTimeout(idleTimer);
    follower.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  if (typeof m.committed === 'number') {
    committed = Math.max(committed, m.committed);
    follow();
  }
});
