// minisign keys and signatures on hostile input: refused with a WaxsealError or parsed. The text
// forms carry free comments, so they have no unique encoding: what must hold is that the parsed
// blob is exactly what the canonical form encodes, and that the canonical form is a fixed point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { hostileBytes, hostileText, parseOrRefuse } from '@waxseal/testkit';
import { parseMinisignKey, parseMinisignSignature, verifyMinisign } from './minisign.ts';
import { concat, fromBase64, fromBase64Url, toBase64, toHex, utf8 } from '../../../core/src/bytes.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pk = fromBase64Url(publicKey.export({ format: 'jwk' }).x!);
const keyId = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
const keyText = `untrusted comment: minisign public key 0807060504030201\n${toBase64(concat(utf8('Ed'), keyId, pk))}\n`;

function signatureText(data: string, trusted = 'timestamp:1700000000'): string {
  const sig = new Uint8Array(sign(null, utf8(data), privateKey));
  const global = new Uint8Array(sign(null, concat(sig, utf8(trusted)), privateKey));
  return `untrusted comment: signature from minisign secret key\n${toBase64(concat(utf8('Ed'), keyId, sig))}\ntrusted comment: ${trusted}\n${toBase64(global)}\n`;
}

test('property: parseMinisignKey refuses with a WaxsealError or parses to a fixed-point canonical form', () => {
  fc.assert(
    fc.property(fc.oneof(hostileText([keyText]).map(utf8), hostileBytes([pk, utf8(keyText)], 64)), (content) => {
      const k = parseOrRefuse(() => parseMinisignKey(content), toHex(content.subarray(0, 48)));
      if (!k) return;
      assert.equal(toHex(fromBase64(k.canonical)), toHex(concat(utf8('Ed'), k.keyId, k.publicKey)));
      const again = parseMinisignKey(utf8(k.canonical));
      assert.equal(again.canonical, k.canonical);
    }),
    { numRuns: 1500 },
  );
});

test('property: parseMinisignSignature refuses with a WaxsealError or parses to a fixed-point canonical form', () => {
  const seeds = [signatureText('data'), signatureText('other', 'file:a.txt'), signatureText('data').split('\n').slice(0, 2).join('\n')];
  fc.assert(
    fc.property(hostileText(seeds), (text) => {
      const s = parseOrRefuse(() => parseMinisignSignature(utf8(text)), JSON.stringify(text.slice(0, 80)));
      if (!s) return;
      const [head, b64] = s.canonical.split('\n');
      assert.equal(head, 'untrusted comment:');
      assert.equal(toHex(fromBase64(b64!)), toHex(concat(utf8(s.algorithm), s.keyId, s.signature)));
      assert.equal(parseMinisignSignature(utf8(s.canonical)).canonical, s.canonical);
    }),
    { numRuns: 2000 },
  );
});

test('the seeds parse and verify', () => {
  const key = parseMinisignKey(utf8(keyText));
  assert.ok(verifyMinisign(key, parseMinisignSignature(utf8(signatureText('data'))), utf8('data')));
  assert.ok(!verifyMinisign(key, parseMinisignSignature(utf8(signatureText('data'))), utf8('tampered')));
  assert.equal(parseMinisignKey(pk).canonical, toBase64(concat(utf8('Ed'), new Uint8Array(8), pk)));
});
