// The audit log on node:sqlite: concurrent appends, every kind of tampering done directly in the
// database, anchors against tail truncation, and offline verification of exports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, copyFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { rejectsWithCode } from '@waxseal/testkit';
import {
  AuditLog,
  FileAuditAnchor,
  MemoryAuditStore,
  auditExport,
  auditList,
  auditVerify,
  auditVerifyExport,
  buildRecord,
  encodeRecord,
  verifyAuditExport,
  type AuditEvent,
  type AuditRecord,
} from '../src/index.ts';

let dir: string;
let base: string;

const event = (i: number): AuditEvent =>
  i % 10 === 3
    ? {
        actor: `10.0.0.${i % 256}`,
        identity: { issuer: 'https://issuer.example', san: `user${i}@example.com` },
        action: 'ca.refuse',
        keyRef: 'file:///ca.key',
        result: 'denied',
        errorCode: 'ERR_POLICY_DENIED',
        detail: { reason: 'no allow rule matches' },
      }
    : {
        actor: `10.0.0.${i % 256}`,
        identity: { issuer: 'https://issuer.example', subject: `s${i}`, san: `user${i}@example.com` },
        action: i % 2 ? 'ca.issue' : 'tsa.timestamp',
        keyRef: 'file:///ca.key',
        digest: i.toString(16).padStart(64, '0'),
        result: 'ok',
        detail: { n: i },
      };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'waxseal-audit-'));
  base = join(dir, 'base.db');
  const log = AuditLog.open(base);
  // 200 concurrent appends: the chain must come out linear and complete.
  const recs = await Promise.all(Array.from({ length: 200 }, (_, i) => log.record(event(i))));
  assert.deepEqual(
    recs.map((r) => r.seq).sort((a, b) => a - b),
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  await log.close();
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A private copy of the 200-record log (database and anchor) for one tampering case. */
async function copyOfBase(name: string): Promise<string> {
  const p = join(dir, `${name}.db`);
  await copyFile(base, p);
  await copyFile(`${base}.anchor.json`, `${p}.anchor.json`);
  return p;
}

function sql(path: string, ...statements: string[]): void {
  const db = new DatabaseSync(path);
  try {
    for (const s of statements) db.exec(s);
  } finally {
    db.close();
  }
}

/** Asserts ERR_AUDIT_TAMPERED naming the record at `seq` (and why, when given). */
const tamperedAt = (p: Promise<unknown>, seq: number, why?: RegExp) =>
  rejectsWithCode(p, 'ERR_AUDIT_TAMPERED', { detail: { seq }, message: why });

test('200 concurrent appends form one verified chain, anchored at the head', async () => {
  const result = await auditVerify(base);
  const anchor = JSON.parse(await readFile(`${base}.anchor.json`, 'utf8')) as { seq: number; hash: string };
  assert.equal(result.records, 200);
  assert.equal(result.anchored, true);
  assert.deepEqual(result.head, { seq: 200, hash: anchor.hash });
  assert.equal(anchor.seq, 200);
});

test('two writers on one database never fork the chain', async () => {
  const p = await copyOfBase('two-writers');
  const a = AuditLog.open(p);
  const b = AuditLog.open(p);
  // Warm both heads, then interleave: each writer's cached head goes stale under the other.
  await a.record(event(1000));
  await b.record(event(1001));
  await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record(event(2000 + i))));
  await a.close();
  await b.close();
  const r = await auditVerify(p, { anchorPath: false });
  assert.equal(r.records, 242);
});

test('a record edited in SQLite is reported at its seq', async () => {
  const p = await copyOfBase('edited');
  sql(p, `UPDATE audit SET record = json_set(record, '$.actor', 'mallory') WHERE seq = 57`);
  await tamperedAt(auditVerify(p), 57, /edited/);
  // Also an edit of nested detail, and an edit of the stored hash itself.
  const q = await copyOfBase('edited-detail');
  sql(q, `UPDATE audit SET record = json_set(record, '$.detail.n', 999) WHERE seq = 120`);
  await tamperedAt(auditVerify(q), 120);
  const h = await copyOfBase('edited-hash');
  sql(h, `UPDATE audit SET record = json_set(record, '$.hash', '${'f'.repeat(64)}') WHERE seq = 9`);
  await tamperedAt(auditVerify(h), 9);
});

test('two reordered records are reported at the first', async () => {
  const p = await copyOfBase('reordered');
  sql(
    p,
    'UPDATE audit SET seq = -1 WHERE seq = 10',
    'UPDATE audit SET seq = 10 WHERE seq = 11',
    'UPDATE audit SET seq = 11 WHERE seq = -1',
  );
  await tamperedAt(auditVerify(p), 10, /reordered/);
});

test('a deleted record is reported where it is missing', async () => {
  const p = await copyOfBase('deleted');
  sql(p, 'DELETE FROM audit WHERE seq = 100');
  await tamperedAt(auditVerify(p), 100, /found seq 101 where 100 was expected/);
  const first = await copyOfBase('deleted-first');
  sql(first, 'DELETE FROM audit WHERE seq = 1');
  await tamperedAt(auditVerify(first), 1);
});

test('an inserted record is reported, even one with a correctly computed hash', async () => {
  const p = await copyOfBase('inserted');
  // Make room after seq 50 and insert a well-formed record chained to record 50.
  const db = new DatabaseSync(p);
  const r50 = JSON.parse((db.prepare('SELECT record FROM audit WHERE seq = 50').get() as { record: string }).record) as AuditRecord;
  const forged = buildRecord({ seq: 50, hash: r50.hash }, { actor: 'mallory', action: 'ca.issue', result: 'ok' }, new Date());
  for (let s = 200; s > 50; s--) db.prepare('UPDATE audit SET seq = ? WHERE seq = ?').run(s + 1, s);
  db.prepare('INSERT INTO audit (seq, record) VALUES (?, ?)').run(51, encodeRecord(forged));
  db.close();
  await tamperedAt(auditVerify(p), 52, /prevHash|found seq/);
});

test('tail truncation passes the chain check but not the anchor', async () => {
  const p = await copyOfBase('truncated');
  sql(p, 'DELETE FROM audit WHERE seq > 195');
  // The remaining chain is internally consistent: without an anchor nothing is wrong…
  assert.equal((await auditVerify(p, { anchorPath: false })).records, 195);
  // …but the anchor remembers seq 200.
  await rejectsWithCode(auditVerify(p), 'ERR_AUDIT_TAMPERED', /ends at seq 195 but the anchor records seq 200/);
  // A head kept elsewhere by the operator works the same way.
  const anchor = await new FileAuditAnchor(`${base}.anchor.json`).read();
  await rejectsWithCode(auditVerify(p, { anchorPath: false, expectedHead: anchor! }), 'ERR_AUDIT_TAMPERED');
  // Truncation followed by new appends: the record at the anchored seq no longer matches.
  const log = AuditLog.open(p, { anchorPath: join(dir, 'unrelated.anchor.json') });
  for (let i = 0; i < 10; i++) await log.record(event(i));
  await log.close();
  await tamperedAt(auditVerify(p), 200, /anchored head/);
});

test('exports verify offline; a modified or missing line does not', async () => {
  const p = await copyOfBase('export');
  const out = join(dir, 'export.jsonl');
  const res = await auditExport(p, out);
  assert.equal(res.records, 200);
  const text = await readFile(out, 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 200);
  assert.equal((await verifyAuditExport(text)).records, 200);
  assert.equal((await auditVerifyExport(out, { anchorPath: `${p}.anchor.json` })).anchored, true);
  assert.equal((await verifyAuditExport(lines)).records, 200);

  const modified = [...lines];
  modified[73] = modified[73]!.replace(/"actor":"[^"]*"/, '"actor":"mallory"');
  assert.notEqual(modified[73], lines[73]);
  await tamperedAt(verifyAuditExport(modified.join('\n')), 74, /edited/);
  await writeFile(join(dir, 'modified.jsonl'), modified.join('\n'));
  await tamperedAt(auditVerifyExport(join(dir, 'modified.jsonl')), 74);

  const dropped = lines.filter((_, i) => i !== 10);
  await tamperedAt(verifyAuditExport(dropped.join('\n')), 11);
  const truncated = lines.slice(0, 150).join('\n');
  assert.equal((await verifyAuditExport(truncated)).records, 150);
  await rejectsWithCode(verifyAuditExport(truncated, { anchor: res.head! }), 'ERR_AUDIT_TAMPERED');
  await rejectsWithCode(verifyAuditExport(`${lines[0]}\nnot json\n`), 'ERR_AUDIT_TAMPERED', { message: /line 2/, detail: { line: 2 } });
  await rejectsWithCode(auditVerifyExport(join(dir, 'missing.jsonl')), 'ERR_IO');
});

test('list filters, reopen continues the chain, bad events and databases are refused', async () => {
  const p = await copyOfBase('list');
  const refusals = await auditList(p, { action: 'ca.refuse', limit: 5 });
  assert.equal(refusals.length, 5);
  assert.ok(refusals.every((r) => r.result === 'denied' && r.errorCode === 'ERR_POLICY_DENIED'));
  assert.deepEqual(
    (await auditList(p, { from: 198 })).map((r) => r.seq),
    [198, 199, 200],
  );
  assert.equal((await auditList(p, { who: 'user42@' })).length, 1);

  const log = AuditLog.open(p);
  const next = await log.record({ actor: 'cli', action: 'log.append', result: 'error', errorCode: 'ERR_SIGNER' });
  assert.equal(next.seq, 201);
  await rejectsWithCode(log.record({ actor: 'cli', action: '', result: 'ok' }), 'ERR_INVALID_INPUT');
  // A rejected event does not advance or break the chain.
  assert.equal((await log.record(event(1))).seq, 202);
  assert.equal((await log.verify()).records, 202);
  await log.close();

  await rejectsWithCode(auditVerify(join(dir, 'nope.db')), 'ERR_IO');
  const notAudit = join(dir, 'other.db');
  sql(notAudit, 'CREATE TABLE t (x)');
  await rejectsWithCode(auditVerify(notAudit), 'ERR_CONFIG');
});

test('the memory store follows the same rules', async () => {
  const store = new MemoryAuditStore();
  const log = new AuditLog(store);
  await Promise.all(Array.from({ length: 20 }, (_, i) => log.record(event(i))));
  assert.equal((await log.verify()).records, 20);
  const stale = buildRecord(undefined, event(0), new Date());
  await rejectsWithCode(store.append(stale), 'ERR_CONFLICT');
  store.records[4] = { ...store.records[4]!, action: 'x' };
  await tamperedAt(log.verify(), 5);
  let exported = '';
  for await (const l of log.export()) exported += l;
  await tamperedAt(verifyAuditExport(exported), 5);
});
