// The audit writer thread: it owns the database connection that appends and the anchor file, so
// SQLite's COMMIT (an fsync, synchronous=FULL) and the anchor's fsync + rename never block the
// event loop. Group commit: every request waiting on the port when a batch starts goes into the
// same transaction, so a busy instance pays one fsync per batch, not one per record.
//
// Port protocol (see writer.ts): in {id, events} or {close: true}; out {replies: WriterReply[]}
// (WriterReply: the stored records' hashes, the failed events by index), and {closed: true}.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { WaxsealError, isWaxsealError } from '@waxseal/core';
import { FileAuditAnchor } from './anchor.ts';
import { chainEvents, type AuditEvent, type AuditHead, type AuditRecord } from './record.ts';
import { SqliteAuditStore } from './store.ts';
import { MAX_AUDIT_BATCH, type WriterReply, type WriterRequest } from './writer.ts';

const { dbPath, anchorPath, busyTimeoutMs, port } = workerData as {
  dbPath: string;
  anchorPath: string | undefined;
  busyTimeoutMs: number | undefined;
  port: MessagePort;
};
const store = new SqliteAuditStore(dbPath, busyTimeoutMs === undefined ? {} : { busyTimeoutMs });
const anchor = anchorPath ? new FileAuditAnchor(anchorPath) : undefined;
let head: AuditHead | undefined | null = null; // null = read it from the database
let anchored: AuditHead | undefined;
let anchorError: WaxsealError | undefined;

function wireError(e: unknown): { code: string; message: string } {
  return e instanceof WaxsealError
    ? { code: e.code, message: e.message }
    : { code: 'ERR_IO', message: `audit append failed: ${e instanceof Error ? e.message : String(e)}` };
}

type Result = AuditRecord | { code: string; message: string };

/** Appends one transaction's worth of events; a head moved by another writer is re-read and retried. */
function commit(events: readonly AuditEvent[]): Result[] {
  for (let attempt = 0; ; attempt++) {
    head ??= store.headSync();
    const chained = chainEvents(head, events, new Date());
    try {
      if (chained.records.length) store.appendManySync(chained.records, chained.texts);
    } catch (e) {
      head = null;
      if (isWaxsealError(e, 'ERR_CONFLICT') && attempt < 20) continue;
      const error = wireError(e);
      return chained.results.map((r) => (r instanceof WaxsealError ? wireError(r) : error));
    }
    head = chained.head;
    return chained.results.map((r) => (r instanceof WaxsealError ? wireError(r) : r));
  }
}

/** One request's reply: only what the caller cannot know (it rebuilds each record from its event). */
function reply(id: number, results: readonly Result[]): WriterReply {
  const out: WriterReply = { id, seq: 0, prevHash: '', time: '', hashes: '' };
  const hashes: string[] = [];
  results.forEach((r, i) => {
    if ('hash' in r) {
      if (hashes.length === 0) {
        out.seq = r.seq;
        out.prevHash = r.prevHash;
        out.time = r.time;
      }
      hashes.push(r.hash);
    } else (out.errors ??= []).push([i, r.code, r.message]);
  });
  out.hashes = hashes.join('');
  return out;
}

function anchorError_(e: unknown): WaxsealError {
  return new WaxsealError('ERR_IO', `cannot write audit anchor ${anchor!.path}: ${(e as Error).message}`, { cause: e });
}

const isAnchored = (h: AuditHead) => anchored !== undefined && anchored.seq === h.seq && anchored.hash === h.hash;

/** Retries a failed anchor write here and now: while it keeps failing nothing more is recorded. */
function retryAnchorSync(): void {
  if (!anchor || !head) return;
  try {
    anchor.writeSync(head);
    anchored = head;
    anchorError = undefined;
  } catch (e) {
    anchorError = anchorError_(e);
  }
}

// The anchor is rewritten on libuv's threadpool while the next batches commit here, so its fsync
// and rename add nothing to a record's wait; one write at a time, always of the newest head, and
// at most one every ANCHOR_INTERVAL_MS: a busy instance commits hundreds of small batches a
// second, and an fsync + rename per batch cost more CPU than the records themselves. The anchor
// may lag the log by that long (plus one write), never lead it.
const ANCHOR_INTERVAL_MS = 100;
let anchorWriting: Promise<void> | undefined;
let anchorStarted = 0;
let anchorTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleAnchor(): void {
  if (!anchor || anchorWriting || anchorTimer || !head || isAnchored(head)) return;
  const wait = anchorStarted + ANCHOR_INTERVAL_MS - performance.now();
  if (wait > 0) {
    anchorTimer = setTimeout(() => {
      anchorTimer = undefined;
      scheduleAnchor();
    }, wait);
    return;
  }
  anchorStarted = performance.now();
  const target = head;
  anchorWriting = anchor.write(target).then(
    () => {
      if (!anchored || target.seq > anchored.seq) anchored = target;
      anchorError = undefined;
    },
    (e: unknown) => {
      anchorError = anchorError_(e);
    },
  );
  void anchorWriting.finally(() => {
    anchorWriting = undefined;
    if (!anchorError) scheduleAnchor();
  });
}

function handle(requests: WriterRequest[]): void {
  const work = requests.filter((r): r is Extract<WriterRequest, { id: number }> => 'id' in r);
  if (work.length) {
    // An anchor that could not be written last time is retried first; while it keeps failing
    // nothing more is recorded (and so nothing more is signed).
    if (anchorError) retryAnchorSync();
    const replies: WriterReply[] = [];
    if (anchorError) {
      const error = wireError(anchorError);
      for (const r of work)
        replies.push(
          reply(
            r.id,
            r.events.map(() => error),
          ),
        );
    } else {
      let chunk: (typeof work)[number][] = [];
      let size = 0;
      const flush = () => {
        const results = commit(chunk.flatMap((r) => r.events));
        let i = 0;
        for (const r of chunk) {
          replies.push(reply(r.id, results.slice(i, i + r.events.length)));
          i += r.events.length;
        }
        chunk = [];
        size = 0;
      };
      for (const r of work) {
        if (size > 0 && size + r.events.length > MAX_AUDIT_BATCH) flush();
        chunk.push(r);
        size += r.events.length;
      }
      if (chunk.length) flush();
    }
    // Acknowledge as soon as the records are durable; the anchor follows (it may lag, never lead).
    port.postMessage({ replies });
    scheduleAnchor();
  }
  if (requests.some((r) => 'close' in r)) void close();
}

async function close(): Promise<void> {
  clearTimeout(anchorTimer);
  anchorTimer = undefined;
  await anchorWriting;
  if (head && anchor && !isAnchored(head)) retryAnchorSync();
  store.closeSync();
  port.postMessage({ closed: true });
  port.close();
}

port.on('message', (first: WriterRequest) => {
  const requests = [first];
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) requests.push(m.message as WriterRequest);
  handle(requests);
});
