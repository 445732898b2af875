import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { throwsWithCode } from '@waxseal/testkit';
import { ChainVerifier, GENESIS_HASH, buildRecord, buildRecordText, computeRecordHash, encodeRecord, type AuditRecord } from './record.ts';

test('record hash = sha256(raw prevHash || JCS(record without hash)), checked by hand', () => {
  const r = buildRecord(
    undefined,
    { actor: '127.0.0.1', action: 'ca.issue', result: 'ok', keyRef: 'file:///ca.key', digest: 'ab' },
    new Date('2030-01-01T00:00:00.000Z'),
  );
  const jcs =
    '{"action":"ca.issue","actor":"127.0.0.1","digest":"ab","keyRef":"file:///ca.key","prevHash":"' +
    GENESIS_HASH +
    '","result":"ok","seq":1,"time":"2030-01-01T00:00:00.000Z"}';
  const want = createHash('sha256').update(Buffer.alloc(32)).update(jcs).digest('hex');
  assert.equal(r.hash, want);
  assert.equal(r.seq, 1);
  const r2 = buildRecord(
    r,
    { actor: 'x', action: 'ca.refuse', result: 'denied', errorCode: 'ERR_POLICY_DENIED', identity: { issuer: 'i', san: 's' } },
    new Date(0),
  );
  assert.equal(r2.prevHash, r.hash);
  assert.equal(r2.hash, computeRecordHash(r2));
  // The export line is the canonical JSON of the whole record.
  assert.equal(
    encodeRecord(r),
    `{"action":"ca.issue","actor":"127.0.0.1","digest":"ab","hash":"${want}","keyRef":"file:///ca.key","prevHash":"${GENESIS_HASH}","result":"ok","seq":1,"time":"2030-01-01T00:00:00.000Z"}`,
  );
});

test('events are validated before anything is chained', () => {
  const bad = [
    { actor: 1, action: 'a', result: 'ok' },
    { actor: 'a', action: '', result: 'ok' },
    { actor: 'a', action: 'a', result: 'maybe' },
    { actor: 'a', action: 'a', result: 'ok', digest: 'XYZ' },
    { actor: 'a', action: 'a', result: 'ok', identity: { san: 5 } },
    { actor: 'a', action: 'a', result: 'ok', detail: { n: NaN } },
    { actor: 'a', action: 'a', result: 'ok', detail: 'x'.repeat(70_000) },
  ];
  for (const e of bad)
    throwsWithCode(() => buildRecord(undefined, e as never, new Date()), 'ERR_INVALID_INPUT', undefined, JSON.stringify(e).slice(0, 80));
});

test('the verifier pinpoints the first bad record', () => {
  const recs: AuditRecord[] = [];
  for (let i = 0; i < 5; i++) recs.push(buildRecord(recs[i - 1], { actor: `a${i}`, action: 'tsa.timestamp', result: 'ok' }, new Date(i)));
  const run = (list: unknown[], anchor?: { seq: number; hash: string }) => {
    const v = new ChainVerifier(anchor);
    for (const r of list) v.push(r);
    return v.finish();
  };
  assert.deepEqual(run(recs), { records: 5, head: { seq: 5, hash: recs[4]!.hash }, anchored: false });
  const tamperedAt = (fn: () => unknown, seq: number) => throwsWithCode(fn, 'ERR_AUDIT_TAMPERED', { detail: { seq } });
  tamperedAt(() => run([recs[0], { ...recs[1]!, actor: 'evil' }, ...recs.slice(2)]), 2);
  tamperedAt(() => run([recs[0], recs[2], recs[1], recs[3]]), 2);
  tamperedAt(() => run([recs[0], recs[1], recs[3], recs[4]]), 3);
  tamperedAt(() => run(recs.slice(1)), 1);
  tamperedAt(() => run([...recs.slice(0, 2), { ...recs[2]!, extra: 1 }]), 3);
  tamperedAt(() => run([recs[0], 'junk']), 2);
  throwsWithCode(() => run(recs.slice(0, 3), { seq: 5, hash: recs[4]!.hash }), 'ERR_AUDIT_TAMPERED', /removed from the end/);
  tamperedAt(() => run(recs, { seq: 3, hash: recs[4]!.hash }), 3);
  assert.equal(run(recs, { seq: 3, hash: recs[2]!.hash }).anchored, true);
});

test('the stored text built with the hash is exactly the canonical JSON of the record', () => {
  const events = [
    { actor: 'a', action: 'ca.issue', result: 'ok' as const },
    {
      actor: '10.0.0.1 ü',
      identity: { san: 'x@example.com', issuer: 'https://i' },
      action: 'ca.refuse',
      keyRef: 'file:///ca.key',
      result: 'denied' as const,
      errorCode: 'ERR_POLICY_DENIED',
      detail: { é: [1, 2.5, null], hash: 'not the record hash', Z: { b: true, a: '\u2028' } },
    },
  ];
  let prev: { seq: number; hash: string } | undefined;
  for (const e of events) {
    const { record, text } = buildRecordText(prev, e, new Date('2030-01-01T00:00:00.000Z'));
    assert.equal(text, encodeRecord(record));
    assert.equal(record.hash, computeRecordHash(record));
    prev = { seq: record.seq, hash: record.hash };
  }
});

test('the direct encoder agrees with the generic canonicaliser over random events', () => {
  const str = fc.string({ unit: 'binary', maxLength: 40 });
  const json = fc.jsonValue({ maxDepth: 3 });
  const event = fc.record(
    {
      actor: str,
      action: str.filter((s) => s !== ''),
      result: fc.constantFrom('ok' as const, 'denied' as const, 'error' as const),
      identity: fc.record({ issuer: str, subject: str, san: str }, { requiredKeys: [] }),
      keyRef: str,
      digest: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 64 }),
      errorCode: str,
      detail: json,
    },
    { requiredKeys: ['actor', 'action', 'result'] },
  );
  fc.assert(
    fc.property(fc.array(event, { minLength: 1, maxLength: 5 }), fc.date({ noInvalidDate: true }), (events, time) => {
      let prev: { seq: number; hash: string } | undefined;
      for (const e of events) {
        const { record, text } = buildRecordText(prev, e, time);
        assert.equal(text, encodeRecord(record));
        assert.equal(record.hash, computeRecordHash(record));
        prev = { seq: record.seq, hash: record.hash };
      }
    }),
    { numRuns: 300 },
  );
});
