// DER is a unique encoding: whatever the reader accepts, the writer must reproduce byte for
// byte, and anything else must be refused with a WaxsealError (never another exception).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostileBytes, parseOrRefuse } from '@waxseal/testkit';
import {
  TAG,
  parseDer,
  tlv,
  integer,
  oid,
  bool,
  bitString,
  generalizedTime,
  x509Time,
  readBigInt,
  readIntegerBytes,
  readOid,
  readBoolean,
  readBitStringBytes,
  readTime,
  type DerNode,
} from './der.ts';
import { concat, toHex } from './bytes.ts';

/** The writer's encoding of a parsed tree: constructed nodes from their children, the rest verbatim. */
function reencode(n: DerNode): Uint8Array {
  return tlv(n.tag, n.tag & 0x20 ? concat(...n.children.map(reencode)) : n.value);
}

/** Random well-formed DER trees (any tag but the high-tag-number form), encoded with the writer. */
const derTree: fc.Arbitrary<Uint8Array> = fc.letrec<{ node: Uint8Array }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .tuple(
        fc.integer({ min: 0, max: 0xff }).filter((t) => (t & 0x1f) !== 0x1f && !(t & 0x20)),
        fc.uint8Array({ maxLength: 140 }),
      )
      .map(([t, v]) => tlv(t, v)),
    fc
      .tuple(
        fc.integer({ min: 0, max: 0xff }).filter((t) => (t & 0x1f) !== 0x1f && (t & 0x20) !== 0),
        fc.array(tie('node'), { maxLength: 4 }),
      )
      .map(([t, kids]) => tlv(t, concat(...kids))),
  ),
})).node;

const seeds = [
  ...fc.sample(derTree, { numRuns: 40, seed: 7 }),
  // Long-form lengths of each size and typical structures.
  tlv(TAG.OCTET_STRING, new Uint8Array(200)),
  tlv(TAG.OCTET_STRING, new Uint8Array(300)),
  tlv(TAG.SEQUENCE, concat(integer(5n), oid('1.2.840.10045.4.3.2'), bool(true), bitString(Uint8Array.of(1, 2)))),
];

test('property: parseDer refuses with a WaxsealError or re-encodes to exactly its input', () => {
  fc.assert(
    fc.property(fc.oneof(derTree, hostileBytes(seeds, 64)), (bytes) => {
      const n = parseOrRefuse(() => parseDer(bytes), toHex(bytes));
      if (n) assert.equal(toHex(reencode(n)), toHex(bytes));
    }),
    { numRuns: 4000 },
  );
});

test('property: well-formed trees always parse (the reader accepts what the writer makes)', () => {
  fc.assert(
    fc.property(derTree, (bytes) => assert.equal(toHex(reencode(parseDer(bytes))), toHex(bytes))),
    { numRuns: 500 },
  );
});

/** Minimal two's-complement INTEGER (the writer's integer() covers the non-negative ones). */
function signedInteger(x: bigint): Uint8Array {
  if (x >= 0n) return integer(x);
  let n = 1;
  while (x < -(1n << BigInt(8 * n - 1))) n++;
  let v = (1n << BigInt(8 * n)) + x;
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return tlv(TAG.INTEGER, out);
}

/** A primitive of `tag` whose value is either random bytes or near-valid text. */
const primitiveOf = (tag: number, text: fc.Arbitrary<string>) =>
  fc
    .oneof(
      fc.uint8Array({ maxLength: 12 }),
      text.map((s) => Uint8Array.from(s, (c) => c.charCodeAt(0))),
    )
    .map((v) => tlv(tag, v));

const digits = (n: number) => fc.array(fc.constantFrom(...'0123456789'), { minLength: n, maxLength: n }).map((a) => a.join(''));
const month = fc.integer({ min: 0, max: 13 }).map((m) => String(m).padStart(2, '0'));
const day = fc.integer({ min: 0, max: 32 }).map((d) => String(d).padStart(2, '0'));
const clock = fc
  .tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 61 }))
  .map((t) => t.map((x) => String(x).padStart(2, '0')).join(''));
const utcText = fc.tuple(digits(2), month, day, clock, fc.constantFrom('Z', '', '+0000')).map((p) => p.join(''));
const genText = fc
  .tuple(
    digits(4),
    month,
    day,
    clock,
    fc.option(digits(1).chain((d) => fc.constantFrom(d, `${d}5`, `${d}50`, `${d}25`, `${d}999`, `${d}0001`))),
    fc.constantFrom('Z', ''),
  )
  .map(([y, mo, d, c, frac, z]) => `${y}${mo}${d}${c}${frac === null ? '' : `.${frac}`}${z}`);

test('property: INTEGER, OID, BOOLEAN and BIT STRING readers accept only the encoding the writer makes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 10 }), (v) => {
      const der = tlv(TAG.INTEGER, v);
      const x = parseOrRefuse(() => readBigInt(parseDer(der)));
      if (x === undefined) return;
      assert.equal(toHex(signedInteger(x)), toHex(der), String(x));
      if (x >= 0n) assert.equal(toHex(integer(readIntegerBytes(parseDer(der)))), toHex(der));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (v) => {
      const der = tlv(TAG.OID, v);
      const dotted = parseOrRefuse(() => readOid(parseDer(der)));
      if (dotted !== undefined) assert.equal(toHex(oid(dotted)), toHex(der), dotted);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3 }), (v) => {
      const der = tlv(TAG.BOOLEAN, v);
      const b = parseOrRefuse(() => readBoolean(parseDer(der)));
      if (b !== undefined) assert.equal(toHex(bool(b)), toHex(der));
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 6 }), (v) => {
      const der = tlv(TAG.BIT_STRING, v);
      const bits = parseOrRefuse(() => readBitStringBytes(parseDer(der)));
      if (bits !== undefined) assert.equal(toHex(bitString(bits)), toHex(der));
    }),
    { numRuns: 500 },
  );
});

test('property: times are refused or re-encode exactly (no rolled-over dates, no 2-digit years)', () => {
  fc.assert(
    fc.property(primitiveOf(TAG.UTC_TIME, utcText), (der) => {
      const d = parseOrRefuse(() => readTime(parseDer(der)));
      // UTCTime covers 1950-2049, exactly the years x509Time writes as UTCTime.
      if (d) assert.equal(toHex(x509Time(d)), toHex(der), d.toISOString());
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(primitiveOf(TAG.GENERALIZED_TIME, genText), (der) => {
      const d = parseOrRefuse(() => readTime(parseDer(der)));
      if (!d) return;
      const frac = /\.(\d+)Z$/.exec(Buffer.from(parseDer(der).value).toString('latin1'))?.[1];
      if (frac === undefined || frac.length <= 3) assert.equal(toHex(generalizedTime(d, true)), toHex(der), d.toISOString());
      // Finer fractions are kept to the millisecond (truncated): the same instant, less precise.
      else assert.equal(d.getUTCMilliseconds(), Number(frac.slice(0, 3)));
    }),
    { numRuns: 3000 },
  );
});
