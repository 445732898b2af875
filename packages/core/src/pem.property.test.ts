// PEM (RFC 7468) on hostile text: refused with a WaxsealError or parsed; what is parsed
// re-encodes to a fixed point, and a block's body has exactly one accepted base64 spelling
// (line breaks aside), so two different bodies never give the same DER.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostileText, parseOrRefuse, throwsWithCode } from '@waxseal/testkit';
import { decodePem, decodePemAll, encodePem } from './pem.ts';
import { toBase64, toHex } from './bytes.ts';

const label = fc.constantFrom('CERTIFICATE', 'PUBLIC KEY', 'SSH SIGNATURE', 'X 509');
const block = fc.tuple(label, fc.uint8Array({ maxLength: 100 }));
const canonical = (blocks: readonly { label: string; der: Uint8Array }[]) => blocks.map((b) => encodePem(b.label, b.der)).join('');

const seeds = fc.sample(fc.array(block, { minLength: 1, maxLength: 3 }), { numRuns: 20, seed: 11 }).flatMap((bs) => {
  const pem = bs.map(([l, d]) => encodePem(l, d)).join('');
  return [pem, pem.replace(/\n/g, '\r\n'), `junk before\n${pem}and after\n`];
});

test('property: decodePemAll refuses with a WaxsealError or parses to a fixed point of encodePem', () => {
  fc.assert(
    fc.property(hostileText(seeds), (text) => {
      const blocks = parseOrRefuse(() => decodePemAll(text), JSON.stringify(text));
      if (!blocks) return;
      const again = decodePemAll(canonical(blocks));
      assert.deepEqual(
        again.map((b) => [b.label, toHex(b.der)]),
        blocks.map((b) => [b.label, toHex(b.der)]),
      );
      assert.equal(canonical(again), canonical(blocks));
      // decodePem is the first block, or a refusal; never another exception.
      parseOrRefuse(() => decodePem(text, ['CERTIFICATE']));
    }),
    { numRuns: 3000 },
  );
});

test('property: encodePem output parses back exactly; re-encoding gives the same text', () => {
  fc.assert(
    fc.property(fc.array(block, { minLength: 1, maxLength: 3 }), (bs) => {
      const text = bs.map(([l, d]) => encodePem(l, d)).join('');
      const blocks = decodePemAll(text);
      assert.deepEqual(
        blocks.map((b) => [b.label, toHex(b.der)]),
        bs.map(([l, d]) => [l, toHex(d)]),
      );
      assert.equal(canonical(blocks), text);
    }),
    { numRuns: 300 },
  );
});

test('property: a body spelled other than as canonical padded base64 is refused', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 3 }), (der, spare) => {
      const b64 = toBase64(der);
      const variants: string[] = [];
      if (b64.endsWith('=')) {
        variants.push(b64.replace(/=+$/, '')); // unpadded
        // Non-zero spare bits in the last character decode to the same bytes.
        const i = b64.replace(/=+$/, '').length - 1;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
        const c = alphabet[(alphabet.indexOf(b64[i]!) + spare) % 64]!;
        if (Buffer.from(b64.slice(0, i) + c + b64.slice(i + 1), 'base64').equals(Buffer.from(der)))
          variants.push(b64.slice(0, i) + c + b64.slice(i + 1));
      }
      for (const v of variants) {
        const text = `-----BEGIN CERTIFICATE-----\n${v}\n-----END CERTIFICATE-----\n`;
        throwsWithCode(() => decodePemAll(text), 'ERR_PEM_PARSE', /not canonical base64/, v);
      }
    }),
    { numRuns: 500 },
  );
});
