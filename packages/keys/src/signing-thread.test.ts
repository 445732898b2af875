import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { generateSigner } from './memory.ts';
import { packMessages, unpackMessages } from './signing-thread.ts';
import { rejectsWithCode } from '@waxseal/testkit';
import { publicKeyFromSpki } from '../../core/src/crypto.ts';

const signMany = (t: ReturnType<ReturnType<typeof generateSigner>['startSigningThread']>, msgs: Uint8Array[]) =>
  new Promise<Uint8Array[]>((resolve, reject) => t.signMany(msgs, (e, s) => (e ? reject(e) : resolve(s!))));

test('packing keeps every message, empty ones included, in order', () => {
  const msgs = [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)];
  const b = packMessages(7, msgs);
  assert.equal(b.id, 7);
  assert.deepEqual(unpackMessages(b), msgs);
});

for (const kind of ['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const) {
  test(`${kind}: the thread's signatures verify with the signer's public key, one per message, in order`, async () => {
    const signer = generateSigner(kind);
    const thread = signer.startSigningThread();
    try {
      const msgs = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`message ${i}`));
      const [a, b] = await Promise.all([signMany(thread, msgs.slice(0, 20)), signMany(thread, msgs.slice(20))]);
      const sigs = [...a, ...b];
      assert.equal(sigs.length, 50);
      const key = publicKeyFromSpki(signer.publicKeySpki).key;
      sigs.forEach((sig, i) => assert.ok(verify(kind === 'ed25519' ? null : signer.hash, msgs[i]!, key, sig), `signature ${i}`));
      assert.ok(!verify(kind === 'ed25519' ? null : signer.hash, msgs[1]!, key, sigs[0]!), 'signature 0 is not for message 1');
    } finally {
      await thread.close();
    }
  });
}

test('after close, and for batches in flight at close, callers get ERR_SIGNER (never a hang)', async () => {
  const thread = generateSigner().startSigningThread();
  const inFlight = rejectsWithCode(signMany(thread, [Uint8Array.of(1)]), 'ERR_SIGNER');
  await thread.close();
  assert.equal(thread.healthy, false);
  await inFlight;
  await rejectsWithCode(signMany(thread, [Uint8Array.of(2)]), 'ERR_SIGNER');
});
