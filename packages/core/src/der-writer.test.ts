// The DER writer (der.ts): the tree encoder and the convenience encoders agree with each other and
// with the reader, across every length form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TAG, derTree, encodeTree, parseDer, seq, setOf, tlv, tlvOf, type DerPart } from './der.ts';

// One length of each header form: short, 0x81, 0x82, 0x83, 0x84.
const LENGTHS = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000];

test('tlv writes minimal length octets for every length form', () => {
  for (const n of LENGTHS) {
    const out = tlv(TAG.OCTET_STRING, new Uint8Array(n).fill(7));
    const node = parseDer(out); // the reader rejects non-minimal lengths
    assert.equal(node.value.length, n);
    assert.equal(out.length, node.raw.length);
  }
});

test('encodeTree, tlvOf and seq write the same bytes as nesting tlv by hand', () => {
  for (const n of LENGTHS.slice(0, 8)) {
    const a = new Uint8Array(n).fill(1);
    const b = tlv(TAG.INTEGER, Uint8Array.of(5));
    const byHand = tlv(TAG.SEQUENCE, Buffer.concat([b, tlv(0xa0, Buffer.concat([tlv(TAG.OCTET_STRING, a), b]))]));
    const tree = derTree(TAG.SEQUENCE, b, derTree(0xa0, tlv(TAG.OCTET_STRING, a), b));
    assert.deepEqual(Buffer.from(encodeTree(tree)), Buffer.from(byHand));
    assert.deepEqual(Buffer.from(seq(b, tlvOf(0xa0, [tlv(TAG.OCTET_STRING, a), b]))), Buffer.from(byHand));
  }
});

test('a tree reused in two encodings gives the same bytes both times', () => {
  const shared = derTree(TAG.SEQUENCE, new Uint8Array(300));
  const one = encodeTree(derTree(TAG.SET, shared));
  const two = encodeTree(derTree(TAG.SEQUENCE, shared, shared));
  assert.deepEqual(Buffer.from(two.subarray(4)), Buffer.concat([one.subarray(4), one.subarray(4)]));
});

test('random trees encode to DER the reader reads back as the same tree', () => {
  const leaf = fc.uint8Array({ maxLength: 300 }).map((b) => tlv(TAG.OCTET_STRING, b));
  const { tree } = fc.letrec<{ tree: DerPart }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(tie('tree'), { maxLength: 5 }).map((children) => derTree(TAG.SEQUENCE, ...children)),
    ),
  }));
  fc.assert(
    fc.property(tree, (t) => {
      const out = encodeTree(t);
      const check = (p: DerPart, n: ReturnType<typeof parseDer>): void => {
        if (p instanceof Uint8Array) {
          assert.deepEqual(Buffer.from(n.raw), Buffer.from(p));
          return;
        }
        assert.equal(n.tag, p.tag);
        assert.equal(n.children.length, p.children.length);
        p.children.forEach((c, i) => {
          check(c, n.children[i]!);
        });
      };
      check(t, parseDer(out));
    }),
  );
});

test('SET OF sorts by encoding, in its own buffer', () => {
  const s = setOf(tlv(TAG.INTEGER, Uint8Array.of(9)), tlv(TAG.BOOLEAN, Uint8Array.of(0)));
  assert.deepEqual([...s], [0x31, 6, 0x01, 1, 0, 0x02, 1, 9]);
  assert.equal(s.byteOffset, 0);
  assert.equal(s.buffer.byteLength, s.length);
});
