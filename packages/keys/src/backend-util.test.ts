import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import fc from 'fast-check';
import { WaxsealError } from '../../core/src/errors.ts';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { publicKeyFromSpki } from '../../core/src/crypto.ts';
import { assertSignatureMatches, rawEcdsaToDer, ResourcePool } from './backend-util.ts';

test('rawEcdsaToDer turns r||s into a DER signature node:crypto accepts', () => {
  for (const curve of ['P-256', 'P-384', 'P-521'] as const) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (msg) => {
        const raw = nodeSign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = rawEcdsaToDer(raw);
        assert.ok(nodeVerify('sha256', msg, { key: publicKey, dsaEncoding: 'der' }, der));
        // Converting back through node:crypto's own P1363 form gives the same r||s.
        assert.ok(nodeVerify('sha256', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw));
      }),
      { numRuns: 20 },
    );
  }
  // Leading zero bytes in r or s are trimmed; a high bit gets a 0x00 pad.
  const raw = new Uint8Array(64);
  raw[31] = 1;
  raw[32] = 0x80;
  assert.deepEqual(Buffer.from(rawEcdsaToDer(raw)).toString('hex'), `302602010102210080${'00'.repeat(31)}`);
  throwsWithCode(() => rawEcdsaToDer(new Uint8Array(63)), 'ERR_SIGNER');
});

test('assertSignatureMatches rejects a signature by another key', () => {
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKeyFromSpki(new Uint8Array(a.publicKey.export({ format: 'der', type: 'spki' })));
  const msg = Buffer.from('m');
  assertSignatureMatches(pub, 'sha256', msg, nodeSign('sha256', msg, a.privateKey), 'k');
  throwsWithCode(
    () => assertSignatureMatches(pub, 'sha256', msg, nodeSign('sha256', msg, b.privateKey), 'kms://x'),
    'ERR_SIGNER',
    /kms:\/\/x/,
  );
  throwsWithCode(() => assertSignatureMatches(pub, 'sha256', msg, Uint8Array.of(1, 2, 3), 'k'), 'ERR_SIGNER');
});

test('ResourcePool: bounded, FIFO waiters, discard replaces, close fails waiters', async () => {
  let made = 0;
  const pool = new ResourcePool(2, () => ++made);
  const a = await pool.acquire();
  const b = await pool.acquire();
  assert.deepEqual([a, b], [1, 2]);
  const order: number[] = [];
  const w1 = pool.acquire().then((r) => (order.push(r), r));
  const w2 = pool.acquire().then((r) => (order.push(r), r));
  pool.release(b);
  assert.equal(await w1, 2);
  pool.discard(); // `a` broke: the next waiter gets a fresh resource
  assert.equal(await w2, 3);
  assert.deepEqual(order, [2, 3]);
  const w3 = pool.acquire();
  const idle = pool.close();
  assert.deepEqual(idle, []);
  await rejectsWithCode(w3, 'ERR_SIGNER');
  await rejectsWithCode(pool.acquire(), 'ERR_SIGNER');
  // The factory's own error reaches the caller unchanged.
  const failing = new ResourcePool(1, () => {
    throw new WaxsealError('ERR_SIGNER', 'no sessions');
  });
  await rejectsWithCode(failing.acquire(), 'ERR_SIGNER', /no sessions/);
});
