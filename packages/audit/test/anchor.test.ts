// The signed anchor: a prune stores a statement of where the kept records start, signed by the
// instance's TSA key, and `audit verify` checks it against the TSA certificates of the trusted
// root. A pruned database whose anchor is missing, unsigned, signed by another key or altered is
// refused; an archive verifies on its own (its last line is its own signed anchor) and chains
// into the database's anchor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { rejectsWithCode, useTempDir } from '@waxseal/testkit';
import { generateSigner, selfSignedRoot, tsaLeaf } from '@waxseal/keys';
import { buildCertificateAuthority, buildTrustedRoot, parseTrustedRootJson, serializeTrustedRoot } from '@waxseal/bundle';
import {
  AuditLog,
  anchorKeysFromTrustedRoot,
  auditExport,
  auditPrune,
  auditVerify,
  auditVerifyExport,
  signAnchor,
  verifyAuditExport,
  type AnchorKey,
  type AuditEvent,
  type SignedAnchor,
} from '../src/index.ts';

const tmp = useTempDir('wx-audit-anchor-');
const DAY = 86_400_000;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const day = (d: number) => new Date(T0 + d * DAY);
const event = (i: number): AuditEvent => ({
  actor: 'tester',
  action: 'tsa.timestamp',
  result: 'ok',
  digest: i.toString(16).padStart(64, '0'),
});

/** A TSA (root and leaf) and the trusted root that lists it, as the instance publishes it. */
async function tsaAndTrustedRoot(validFor?: { start: Date; end?: Date }) {
  const rootSigner = generateSigner('ecdsa-p384', 'memory://tsa-root');
  const notAfter = new Date(Date.now() + 365 * DAY);
  const root = await selfSignedRoot(rootSigner, { commonName: 'test TSA root', notAfter });
  const signer = generateSigner('ecdsa-p256', 'memory://tsa');
  const leaf = await tsaLeaf(signer.publicKeySpki, rootSigner, root, { commonName: 'test TSA', notAfter });
  const trusted = buildTrustedRoot({
    certificateAuthorities: [],
    timestampAuthorities: [buildCertificateAuthority({ uri: 'https://tsa.test', chain: [leaf, root], ...(validFor ? { validFor } : {}) })],
  });
  // Through its JSON, as `waxseal audit verify --trusted-root` reads it.
  const keys = anchorKeysFromTrustedRoot(parseTrustedRootJson(JSON.stringify(serializeTrustedRoot(trusted))));
  return { signer, keys };
}

/** 3 days of 5 records; the first 2 days archived (signed) and pruned (signed). */
async function prunedLog(name: string, signer: Parameters<typeof signAnchor>[1]) {
  const db = join(tmp.dir, `${name}.db`);
  const at = { now: T0 };
  const log = AuditLog.open(db, { clock: () => new Date(at.now) });
  for (let d = 0; d < 3; d++) {
    at.now = T0 + d * DAY;
    for (let i = 0; i < 5; i++) await log.record(event(d * 5 + i));
  }
  await log.close();
  const archive = join(tmp.dir, `${name}.jsonl`);
  const exported = await auditExport(db, archive, { before: day(2), signer });
  const pruned = await auditPrune(db, { before: day(2), archivePath: archive, signer });
  return { db, archive, exported, pruned };
}

/** A copy of a database (and its anchor file) with `edit` applied to its SQL. */
function tamperedCopy(db: string, name: string, edit: (sql: DatabaseSync) => void): string {
  const p = join(tmp.dir, `${name}.db`);
  copyFileSync(db, p);
  copyFileSync(`${db}.anchor.json`, `${p}.anchor.json`);
  const sql = new DatabaseSync(p);
  edit(sql);
  sql.close();
  return p;
}

const storedAnchor = (sql: DatabaseSync) =>
  JSON.parse((sql.prepare('SELECT anchor FROM audit_anchor').get() as { anchor: string }).anchor) as SignedAnchor;
const setAnchor = (sql: DatabaseSync, a: unknown) => sql.prepare('UPDATE audit_anchor SET anchor = ?').run(JSON.stringify(a));

test('a pruned log verifies from its signed anchor; the archive verifies on its own and chains into it', async () => {
  const { signer, keys } = await tsaAndTrustedRoot();
  const { db, archive, exported, pruned } = await prunedLog('good', signer);
  assert.equal(exported.records, 10);
  assert.equal(pruned.pruned, 10);

  const v = await auditVerify(db, { anchorKeys: keys });
  assert.deepEqual(v.base, { seq: 10, hash: exported.head!.hash });
  assert.equal(v.signed?.event, 'prune');
  assert.equal(v.signed?.signedBy, 'https://tsa.test');
  assert.deepEqual(v.signed?.from, { seq: 0, hash: '0'.repeat(64) });

  // The archive alone: its chain from seq 1 and its own signed anchor, checked against the trusted root.
  const a = await auditVerifyExport(archive, { anchorKeys: keys });
  assert.equal(a.records, 10);
  assert.equal(a.signed?.event, 'export');
  assert.equal(a.signed?.signedBy, 'https://tsa.test');
  // …and it chains into the database: it ends where the database starts, and it is the archive
  // the database's signed anchor names (same SHA-256).
  assert.deepEqual(a.signed?.through, v.base);
  assert.equal(a.archiveSha256, v.signed?.archiveSha256);

  // Without the trusted root a pruned log cannot be verified: said so, not passed.
  await rejectsWithCode(auditVerify(db), 'ERR_INVALID_INPUT', /signed anchor, against the instance's trusted root/);
  // An archive verifies without one too, the signature then unchecked (not claimed).
  const unchecked = await auditVerifyExport(archive);
  assert.equal(unchecked.signed?.signedBy, undefined);
});

test('a pruned database whose signed anchor is missing, unsigned, foreign or altered is refused', async () => {
  const { signer, keys } = await tsaAndTrustedRoot();
  const { db } = await prunedLog('refuse', signer);
  const refuses = async (name: string, edit: (sql: DatabaseSync) => void, why: RegExp) =>
    rejectsWithCode(auditVerify(tamperedCopy(db, name, edit), { anchorKeys: keys }), 'ERR_AUDIT_TAMPERED', why);

  await refuses('missing', (sql) => sql.exec('DELETE FROM audit_anchor'), /no signed anchor says where the log starts/);
  await refuses('unsigned', (sql) => setAnchor(sql, { ...storedAnchor(sql), signature: '' }), /not signed/);
  // Signed, but by a key the trusted root does not list (whoever rewrote the database made one).
  const mallory = generateSigner('ecdsa-p256', 'memory://mallory');
  const foreign = await signAnchor(storedAnchor(new DatabaseSync(db, { readOnly: true })).statement, mallory);
  await refuses('foreign', (sql) => setAnchor(sql, foreign), /not signed by a timestamp authority key of the trusted root/);
  // The statement edited (another time, another cut) under the original signature.
  await refuses(
    'altered-time',
    (sql) => {
      const a = storedAnchor(sql);
      setAnchor(sql, { ...a, statement: { ...a.statement, time: '2031-01-01T00:00:00.000Z' } });
    },
    /does not verify/,
  );
  await refuses(
    'altered-signature',
    (sql) => {
      const a = storedAnchor(sql);
      const sig = Buffer.from(a.signature, 'base64');
      sig[sig.length - 3]! ^= 1;
      setAnchor(sql, { ...a, signature: sig.toString('base64') });
    },
    /does not verify/,
  );
  await refuses('not-json', (sql) => sql.prepare('UPDATE audit_anchor SET anchor = ?').run('{"statement":'), /not JSON/);
  // More records cut off the start with the base moved to match: the (genuine) anchor names seq 10.
  await refuses(
    'cut-more',
    (sql) => {
      const r12 = JSON.parse((sql.prepare('SELECT record FROM audit WHERE seq = 12').get() as { record: string }).record) as {
        hash: string;
      };
      sql.exec('DELETE FROM audit WHERE seq <= 12');
      sql.prepare('UPDATE audit_base SET seq = 12, hash = ?').run(r12.hash);
    },
    /starts after seq 12 but its signed anchor states a prune through seq 10/,
  );
  // And the untouched database still passes.
  assert.equal((await auditVerify(db, { anchorKeys: keys })).records, 6);
});

test('an anchor signed outside its TSA validity window is refused', async () => {
  // The trusted root says this TSA key signs only until yesterday (it was rotated out).
  const { signer, keys } = await tsaAndTrustedRoot({ start: new Date(Date.now() - 10 * DAY), end: new Date(Date.now() - DAY) });
  const { db } = await prunedLog('expired', signer);
  await rejectsWithCode(auditVerify(db, { anchorKeys: keys }), 'ERR_AUDIT_TAMPERED', /was not valid at/);
});

test('an archive whose bytes, end or signature differ from its signed anchor is refused', async () => {
  const { signer, keys } = await tsaAndTrustedRoot();
  const { archive } = await prunedLog('archive', signer);
  const text = readFileSync(archive, 'utf8');
  const lines = text.split('\n').filter((l) => l !== '');
  const anchorLine = lines.at(-1)!;
  const refuses = (t: string, why: RegExp, k: readonly AnchorKey[] | undefined = keys) =>
    rejectsWithCode(verifyAuditExport(t, k ? { anchorKeys: k } : {}), 'ERR_AUDIT_TAMPERED', why);

  // Same records as JSON, other bytes: the chain holds, the signed digest does not.
  const respaced = [lines[0]!.replace('","', '", "'), ...lines.slice(1)].join('\n');
  assert.equal((await verifyAuditExport(lines.slice(0, -1).join('\n'))).records, 10);
  await refuses(respaced, /not the ones it signed/);
  // The last record dropped (the anchor kept): it no longer ends where its anchor says.
  await refuses([...lines.slice(0, -2), anchorLine].join('\n'), /ends at seq 9 but its signed anchor states seq 10/);
  // Signed by a key the trusted root does not list.
  const a = JSON.parse(anchorLine) as { auditAnchor: SignedAnchor };
  const foreign = await signAnchor(a.auditAnchor.statement, generateSigner('ecdsa-p256', 'memory://mallory'));
  await refuses([...lines.slice(0, -1), JSON.stringify({ auditAnchor: foreign })].join('\n'), /not signed by a timestamp authority key/);
  // A prune anchor is not an archive's.
  const asPrune = await signAnchor({ ...a.auditAnchor.statement, event: 'prune' }, signer);
  await refuses([...lines.slice(0, -1), JSON.stringify({ auditAnchor: asPrune })].join('\n'), /states a prune, not an export/);
  // Written back untouched, it still verifies.
  writeFileSync(join(tmp.dir, 'copy.jsonl'), text);
  assert.equal((await auditVerifyExport(join(tmp.dir, 'copy.jsonl'), { anchorKeys: keys })).signed?.through.seq, 10);
});

test('prune needs the signing key and checks the earlier anchor with it', async () => {
  const { signer } = await tsaAndTrustedRoot();
  const { db } = await prunedLog('again', signer);
  await rejectsWithCode(auditPrune(db, { before: day(3), discard: true }), 'ERR_INVALID_INPUT', /TSA key/);
  // Another key cannot vouch for the anchor the first prune stored.
  const other = generateSigner('ecdsa-p256', 'memory://other');
  await rejectsWithCode(auditPrune(db, { before: day(3), discard: true, signer: other }), 'ERR_AUDIT_TAMPERED', /not signed by/);
  const r = await auditPrune(db, { before: day(3), discard: true, signer });
  assert.equal(r.pruned, 6);
  assert.deepEqual(r.signed?.from.seq, 10);
  assert.equal(r.signed?.archiveSha256, undefined);
});
