import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { throwsWithCode } from '@waxseal/testkit';
import { ByteReader } from './byte-reader.ts';
import { WaxsealError } from './errors.ts';

const reader = (...b: number[]) => new ByteReader(Uint8Array.from(b), 'ERR_INVALID_INPUT', 'thing');

test('reads big-endian integers, bytes and length-prefixed vectors', () => {
  const r = reader(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 2, 2, 0xaa, 0xbb, 9);
  assert.equal(r.u8(), 0x01);
  assert.equal(r.u16(), 0x0203);
  assert.equal(r.u24(), 0x040506);
  assert.equal(r.u32(), 0xffffffff);
  assert.equal(r.u64(), 2 ** 32 + 2);
  assert.deepEqual(r.vector(1), Uint8Array.of(0xaa, 0xbb));
  assert.equal(r.remaining, 1);
  assert.equal(r.done, false);
  assert.deepEqual(r.rest(), Uint8Array.of(9));
  assert.equal(r.done, true);
  r.expectEnd();
});

test('every overrun is a WaxsealError with the caller code and subject', () => {
  const e = throwsWithCode(() => reader(1).u16(), 'ERR_INVALID_INPUT', /^thing: truncated/);
  assert.equal(e.name, 'WaxsealError');
  throwsWithCode(() => reader().u8(), 'ERR_INVALID_INPUT');
  throwsWithCode(() => reader(0, 0, 0, 5, 1).vector(4), 'ERR_INVALID_INPUT');
  throwsWithCode(() => reader(1, 2).bytes(3), 'ERR_INVALID_INPUT');
  throwsWithCode(() => reader(1).expectEnd('leftovers'), 'ERR_INVALID_INPUT', /thing: leftovers/);
  throwsWithCode(() => reader(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff).u64(), 'ERR_INVALID_INPUT', /too large/);
  throwsWithCode(() => new ByteReader(new Uint8Array(1), 'ERR_LOG_ENTRY_INVALID', 'x').u32(), 'ERR_LOG_ENTRY_INVALID');
});

test('a failed read leaves the position where it was', () => {
  const r = reader(0, 3, 1);
  throwsWithCode(() => r.vector(2), 'ERR_INVALID_INPUT');
  assert.equal(r.pos, 2); // the length prefix was read, the short body was not
  throwsWithCode(() => r.u16(), 'ERR_INVALID_INPUT');
  assert.equal(r.pos, 2);
});

test('arbitrary reads over arbitrary bytes: values or WaxsealError, never past the end', () => {
  const op = fc.constantFrom('u8', 'u16', 'u24', 'u32', 'u64', 'v1', 'v2', 'v3', 'v4', 'b3', 'rest');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(op, { maxLength: 12 }), (buf, ops) => {
      const r = new ByteReader(buf, 'ERR_INVALID_INPUT', 'fuzz');
      for (const o of ops) {
        try {
          if (o === 'rest') r.rest();
          else if (o === 'b3') r.bytes(3);
          else if (o.startsWith('v')) r.vector(Number(o[1]) as 1 | 2 | 3 | 4);
          else (r[o as 'u8'] as () => number).call(r);
        } catch (e) {
          assert.ok(e instanceof WaxsealError && e.code === 'ERR_INVALID_INPUT');
        }
        assert.ok(r.pos <= buf.length);
        assert.equal(r.remaining, buf.length - r.pos);
      }
    }),
  );
});
