// Archiving and pruning: `export --before` writes an archive that verifies on its own, `prune`
// removes exactly what it holds and leaves a chain that still verifies from its signed anchor and
// the audit.prune record naming the cut; cutting more off the start, or faking that record, is
// detected. (test/anchor.test.ts: the signed anchor against a trusted root.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { rejectsWithCode, useTempDir } from '@waxseal/testkit';
import { generateSigner } from '@waxseal/keys';
import {
  anchorKeyOf,
  AuditLog,
  auditExport,
  auditPrune,
  auditResultForError,
  auditVerify,
  auditVerifyExport,
  buildRecord,
  encodeRecord,
  signAnchor,
  verifyAuditExport,
  type AuditEvent,
  type AuditRecord,
} from '../src/index.ts';

const tmp = useTempDir('wx-audit-prune-');
// The key that signs where a pruned log starts (the instance's TSA key; test/anchor.test.ts checks
// anchors against a trusted root).
const signer = generateSigner('ecdsa-p256', 'memory://tsa');
const anchorKeys = [anchorKeyOf(signer)];
const DAY = 86_400_000;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const event = (i: number): AuditEvent => ({
  actor: 'tester',
  action: 'tsa.timestamp',
  result: 'ok',
  digest: i.toString(16).padStart(64, '0'),
});

/** A log with `days` days of `perDay` records each, stamped T0, T0 + 1 day, … */
async function dailyLog(name: string, days: number, perDay: number): Promise<{ db: string; log: AuditLog; at: { now: number } }> {
  const db = join(tmp.dir, `${name}.db`);
  const at = { now: T0 };
  const log = AuditLog.open(db, { clock: () => new Date(at.now) });
  for (let d = 0; d < days; d++) {
    at.now = T0 + d * DAY;
    for (let i = 0; i < perDay; i++) await log.record(event(d * perDay + i));
  }
  return { db, log, at };
}

const day = (d: number) => new Date(T0 + d * DAY);

test('export --before, prune with that archive, and everything still verifies', async () => {
  const { db, log, at } = await dailyLog('main', 4, 10);
  await log.close();
  const archive = join(tmp.dir, 'main-1.jsonl');
  const exported = await auditExport(db, archive, { before: day(2) });
  assert.equal(exported.records, 20);
  assert.equal(exported.head?.seq, 20);
  assert.equal((await auditVerifyExport(archive)).records, 20);

  const pruned = await auditPrune(db, { before: day(2), archivePath: archive, signer });
  assert.equal(pruned.pruned, 20);
  assert.deepEqual(pruned.through, exported.head);
  assert.equal(pruned.record?.seq, 41);
  assert.equal(pruned.record?.action, 'audit.prune');

  const v = await auditVerify(db, { anchorKeys });
  assert.equal(v.records, 21);
  assert.deepEqual(v.base, exported.head);
  assert.equal(v.anchored, true);
  assert.equal(v.head?.seq, 41);

  // New records chain on; a second round archives from where the first ended.
  const again = AuditLog.open(db, { clock: () => new Date(at.now) });
  at.now = T0 + 4 * DAY;
  await again.record(event(99));
  await again.close();
  const archive2 = join(tmp.dir, 'main-2.jsonl');
  const second = await auditExport(db, archive2, { before: day(4) });
  assert.equal(second.records, 21); // days 2 and 3, and the prune record
  assert.deepEqual(second.base, exported.head);
  const alone = await auditVerifyExport(archive2);
  assert.deepEqual(alone.base, exported.head, 'an archive after the first says where it starts');
  // Both archives read one after the other verify as one chain from seq 1.
  const both = await verifyAuditExport(readFileSync(archive, 'utf8') + readFileSync(archive2, 'utf8'));
  assert.equal(both.records, 41);
  assert.equal(both.base, undefined);
  // …but not in the wrong order, nor with a gap.
  await rejectsWithCode(verifyAuditExport(readFileSync(archive2, 'utf8') + readFileSync(archive, 'utf8')), 'ERR_AUDIT_TAMPERED');

  assert.equal((await auditPrune(db, { before: day(4), archivePath: archive2, signer })).pruned, 21);
  const v2 = await auditVerify(db, { anchorKeys });
  assert.equal(v2.records, 2);
  assert.equal(v2.base?.seq, 41);
  // The whole history: both archives, then what the database still holds.
  let rest = '';
  for await (const l of AuditLog.open(db, { readOnly: true, anchorPath: false }).export()) rest += l;
  const all = await verifyAuditExport(readFileSync(archive, 'utf8') + readFileSync(archive2, 'utf8') + rest, {
    anchor: v2.head!,
  });
  assert.equal(all.records, 43);
});

test('prune refuses without an archive, with an archive of something else, and on a tampered log', async () => {
  const { db, log } = await dailyLog('refuse', 3, 5);
  await log.close();
  await rejectsWithCode(auditPrune(db, { before: day(2) }), 'ERR_INVALID_INPUT', /archive/);
  const other = await dailyLog('other', 3, 6);
  await other.log.close();
  const foreign = join(tmp.dir, 'foreign.jsonl');
  await auditExport(other.db, foreign, { before: day(2) });
  await rejectsWithCode(
    auditPrune(db, { before: day(2), archivePath: foreign, signer }),
    'ERR_INVALID_INPUT',
    /not an export of this audit log/,
  );

  // An archive older than --before: only what it holds goes.
  const short = join(tmp.dir, 'short.jsonl');
  await auditExport(db, short, { before: day(1) });
  const r = await auditPrune(db, { before: day(2), archivePath: short, signer });
  assert.equal(r.through?.seq, 5);
  // Nothing older than the first kept record: nothing to do.
  assert.equal((await auditPrune(db, { before: day(0), discard: true, signer })).pruned, 0);

  const tampered = join(tmp.dir, 'tampered.db');
  copyFileSync(db, tampered);
  copyFileSync(`${db}.anchor.json`, `${tampered}.anchor.json`);
  const sql = new DatabaseSync(tampered);
  sql.exec(`UPDATE audit SET record = json_set(record, '$.actor', 'mallory') WHERE seq = 8`);
  sql.close();
  await rejectsWithCode(auditPrune(tampered, { before: day(3), discard: true, signer }), 'ERR_AUDIT_TAMPERED');
});

test('records cut off the start of a pruned log, or a forged prune record, are detected', async () => {
  const { db, log } = await dailyLog('cut', 3, 5);
  await log.close();
  await auditPrune(db, { before: day(1), discard: true, signer });
  assert.equal((await auditVerify(db, { anchorKeys })).base?.seq, 5);

  // More records deleted from the start, the base moved to match: no prune record names it.
  const cut = join(tmp.dir, 'cut-more.db');
  copyFileSync(db, cut);
  copyFileSync(`${db}.anchor.json`, `${cut}.anchor.json`);
  const sql = new DatabaseSync(cut);
  const r8 = JSON.parse((sql.prepare('SELECT record FROM audit WHERE seq = 8').get() as { record: string }).record) as AuditRecord;
  sql.exec('DELETE FROM audit WHERE seq <= 8');
  sql.prepare('UPDATE audit_base SET seq = ?, hash = ?').run(8, r8.hash);
  sql.close();
  // The signed anchor names the real cut (seq 5), and moving it needs the TSA key.
  await rejectsWithCode(
    auditVerify(cut, { anchorKeys }),
    'ERR_AUDIT_TAMPERED',
    /starts after seq 8 but its signed anchor states a prune through seq 5/,
  );
  // Without the signed anchor, the audit.prune record that must name the cut is missing too.
  const noSigned = new DatabaseSync(cut);
  const keep = (noSigned.prepare('SELECT anchor FROM audit_anchor').get() as { anchor: string }).anchor;
  const forgedAnchor = JSON.parse(keep) as { statement: { through: { seq: number; hash: string } } };
  forgedAnchor.statement.through = { seq: 8, hash: r8.hash };
  const resigned = await signAnchor(forgedAnchor.statement as Parameters<typeof signAnchor>[0], signer);
  noSigned.prepare('UPDATE audit_anchor SET anchor = ?').run(JSON.stringify(resigned));
  noSigned.close();
  // (Only a holder of the TSA key could do this; the chain still says no prune made that cut.)
  await rejectsWithCode(auditVerify(cut, { anchorKeys }), 'ERR_AUDIT_TAMPERED', /no audit\.prune record names that cut/);

  // …and with a forged prune record appended to vouch for it: it is newer than the anchor.
  const s2 = new DatabaseSync(cut);
  const last = JSON.parse(
    (s2.prepare('SELECT record FROM audit ORDER BY seq DESC LIMIT 1').get() as { record: string }).record,
  ) as AuditRecord;
  const forged = buildRecord(
    { seq: last.seq, hash: last.hash },
    { actor: 'mallory', action: 'audit.prune', result: 'ok', detail: { through: { seq: 8, hash: r8.hash }, before: 'x' } },
    new Date(),
  );
  s2.prepare('INSERT INTO audit (seq, record) VALUES (?, ?)').run(forged.seq, encodeRecord(forged));
  s2.close();
  await rejectsWithCode(auditVerify(cut, { anchorKeys }), 'ERR_AUDIT_TAMPERED', /newer than the anchor/);

  // An anchor from before the prune names a record that is now archived: said so, not "tampered".
  await rejectsWithCode(
    auditVerify(db, { expectedHead: { seq: 3, hash: 'a'.repeat(64) }, anchorKeys }),
    'ERR_INVALID_INPUT',
    /older than the records kept/,
  );
});

test('refusals are denied, failures are error', () => {
  for (const code of [
    'ERR_POLICY_DENIED',
    'ERR_TOKEN_INVALID',
    'ERR_TOKEN_EXPIRED',
    'ERR_INVALID_INPUT',
    'ERR_TSA_REQUEST',
    'ERR_MEDIA_TYPE',
  ])
    assert.equal(auditResultForError(code), 'denied', code);
  for (const code of ['ERR_SIGNER', 'ERR_INTERNAL', 'ERR_UNAVAILABLE', 'ERR_CONFIG', 'no such code', undefined])
    assert.equal(auditResultForError(code), 'error', String(code));
});
