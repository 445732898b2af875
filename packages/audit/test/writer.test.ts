// The writer thread: records are durable when record() resolves, the event loop keeps running
// while a commit waits, a commit that fails rejects (fail closed) without breaking the chain, and
// a process killed with SIGKILL mid-batch loses no acknowledged record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { rejectsWithCode, useTempDir } from '@waxseal/testkit';
import { AuditLog, auditVerify, type AuditEvent } from '../src/index.ts';

const tmp = useTempDir('wx-audit-writer-');
const event = (i: number): AuditEvent => ({
  actor: `10.0.0.${i % 256}`,
  action: 'tsa.timestamp',
  result: 'ok',
  digest: i.toString(16).padStart(64, '0'),
});

test('records come back durable from the writer thread, one bad event fails alone', async () => {
  const db = join(tmp.dir, 'thread.db');
  const log = AuditLog.open(db);
  try {
    const results = await Promise.allSettled([
      ...Array.from({ length: 300 }, (_, i) => log.record(event(i))),
      log.record({ actor: 'x', action: 'ca.issue', result: 'ok', digest: 'NOT HEX' }),
      log.record({ actor: 'x', action: 'ca.issue', result: 'ok', detail: { f: () => 1 } }),
      log.record({ actor: 'x', action: 'ca.issue', result: 'ok', detail: { n: Number.NaN } }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    assert.equal(ok.length, 300);
    assert.deepEqual(
      ok.map((r) => r.seq).sort((a, b) => a - b),
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
    for (const r of results.slice(300)) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_INVALID_INPUT');
    }
    // Another connection sees every acknowledged record: they are committed, not queued.
    const other = new DatabaseSync(db, { readOnly: true });
    assert.equal((other.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n, 300);
    other.close();
  } finally {
    await log.close();
  }
  const v = await auditVerify(db);
  assert.equal(v.records, 300);
  assert.equal(v.anchored, true);
});

test('a commit waiting on a lock leaves the event loop free; a commit that fails rejects and the chain goes on', async () => {
  const db = join(tmp.dir, 'locked.db');
  const log = AuditLog.open(db, { busyTimeoutMs: 300 });
  const blocker = new DatabaseSync(db);
  try {
    await log.record(event(0));
    // Another process holds the write lock: the writer thread waits, this thread does not.
    blocker.exec('BEGIN IMMEDIATE');
    let settled = false;
    const waiting = log.record(event(1)).finally(() => (settled = true));
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(performance.now() - t0 < 250, 'a 50 ms timer fired on time while the commit waited');
    assert.equal(settled, false, 'the record is not acknowledged while it is not committed');
    // The lock outlives the busy timeout: the record is refused (its caller releases nothing).
    await rejectsWithCode(waiting, 'ERR_IO');
    blocker.exec('ROLLBACK');
    const next = await log.record(event(2));
    assert.equal(next.seq, 2, 'the failed record took no seq');
  } finally {
    blocker.close();
    await log.close();
  }
  assert.equal((await auditVerify(db)).records, 2);
});

test('kill -9 in the middle of group commits loses no acknowledged record', { timeout: 60_000 }, async () => {
  const db = join(tmp.dir, 'crash.db');
  const acked = new Map<number, string>();
  for (let round = 0; round < 2; round++) {
    const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'crash-child.ts'), db], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    const before = acked.size;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const l of lines) {
          const [, seq, hash] = l.split(' ');
          acked.set(Number(seq), hash!);
        }
        if (acked.size - before >= 400) resolve();
      });
      child.once('exit', () => resolve());
    });
    child.kill('SIGKILL');
    await exited;
    assert.ok(acked.size - before >= 400, `round ${round}: the child acknowledged records before it was killed`);
  }
  const log = AuditLog.open(db, { thread: false });
  try {
    const verified = await log.verify();
    assert.ok(verified.records >= acked.size);
    const stored = new Map<number, string>();
    for await (const r of log.list()) stored.set(r.seq, r.hash);
    for (const [seq, hash] of acked) assert.equal(stored.get(seq), hash, `acknowledged record ${seq} is stored as acknowledged`);
  } finally {
    await log.close();
  }
});

test('append resolves once the record is durable, with no record built, and fails closed like record', async () => {
  const db = join(tmp.dir, 'append.db');
  const log = AuditLog.open(db);
  try {
    const results = await Promise.allSettled([
      ...Array.from({ length: 50 }, (_, i) => log.append(event(i))),
      log.append({ actor: 'x', action: 'ca.issue', result: 'ok', digest: 'NOT HEX' }),
      log.record(event(50)),
    ]);
    assert.deepEqual(
      results.slice(0, 50).map((r) => r.status === 'fulfilled' && r.value),
      Array.from({ length: 50 }, () => undefined),
    );
    assert.equal(results[50]!.status, 'rejected');
    const last = results[51]!;
    assert.equal(last.status === 'fulfilled' && (last.value as { seq: number }).seq, 51);
    const other = new DatabaseSync(db, { readOnly: true });
    assert.equal((other.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n, 51);
    other.close();
  } finally {
    await log.close();
  }
  await rejectsWithCode(log.append(event(1)), 'ERR_UNAVAILABLE');
});
