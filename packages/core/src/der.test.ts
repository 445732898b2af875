import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDer,
  seq,
  integer,
  oid,
  readOid,
  readBigInt,
  utf8String,
  readString,
  generalizedTime,
  readTime,
  octetString,
  ctx,
  setOf,
  x509Time,
} from './der.ts';
import { throwsWithCode } from '@waxseal/testkit';

test('DER writer and reader round-trip common types', () => {
  const d = new Date(Date.UTC(2026, 10, 22, 1, 2, 3, 450));
  const enc = seq(
    integer(0n),
    integer(128),
    integer(Uint8Array.of(0, 0, 0xff)),
    oid('1.3.6.1.4.1.57264.1.8'),
    utf8String('héllo'),
    generalizedTime(d, true),
    octetString(Uint8Array.of(1, 2)),
  );
  const n = parseDer(enc);
  assert.equal(n.children.length, 7);
  assert.equal(readBigInt(n.children[0]), 0n);
  assert.equal(readBigInt(n.children[1]), 128n);
  assert.equal(readBigInt(n.children[2]), 255n);
  assert.equal(readOid(n.children[3]), '1.3.6.1.4.1.57264.1.8');
  assert.equal(readString(n.children[4]), 'héllo');
  assert.equal(readTime(n.children[5]).toISOString(), '2026-11-22T01:02:03.450Z');
  assert.deepEqual(Buffer.from(parseDer(generalizedTime(d, true)).value).toString(), '20261122010203.45Z');
  assert.equal(readTime(parseDer(x509Time(d))).toISOString(), '2026-11-22T01:02:03.000Z');
});

test('SET OF is sorted by encoding', () => {
  const s = setOf(integer(5), integer(1));
  assert.equal(readBigInt(parseDer(s).children[0]), 1n);
  assert.equal(parseDer(ctx(3, integer(1))).tag, 0xa3);
});

test('DER reader rejects BER and malformed input with ERR_DER_PARSE', () => {
  const bad = [
    Uint8Array.of(0x30, 0x80, 0, 0), // indefinite length
    Uint8Array.of(0x30, 0x81, 0x01, 0x00), // non-minimal length
    Uint8Array.of(0x02, 0x01, 0x00, 0x00), // trailing data
    Uint8Array.of(0x02, 0x05, 0x00), // runs past the end
    Uint8Array.of(0x02, 0x02, 0x00, 0x01), // non-minimal integer
    Uint8Array.of(0x1f, 0x01, 0x00), // high tag number
  ];
  for (const b of bad) throwsWithCode(() => readBigInt(parseDer(b)), 'ERR_DER_PARSE', undefined, Buffer.from(b).toString('hex'));
});

test('deep nesting is bounded', () => {
  let x = integer(1);
  for (let i = 0; i < 40; i++) x = seq(x);
  throwsWithCode(() => parseDer(x), 'ERR_DER_PARSE', /too deep/);
});
