import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, createHash, randomBytes } from 'node:crypto';
import { SignatureVerifier } from './verifier.ts';
import { publicKeyFromSpki, type HashName } from '../../core/src/crypto.ts';

function key(curve: 'P-256' | 'P-384') {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { privateKey, info: publicKeyFromSpki(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }))) };
}

async function checkMany(verifier: SignatureVerifier): Promise<void> {
  const p256 = key('P-256');
  const other = key('P-256');
  const p384 = key('P-384');
  const cases: { run: () => Promise<boolean>; expected: boolean; what: string }[] = [];
  for (let i = 0; i < 150; i++) {
    const msg = randomBytes(24);
    const digest = createHash('sha256').update(msg).digest();
    const sig = sign('sha256', msg, { key: p256.privateKey, dsaEncoding: 'der' });
    const kind = i % 5;
    const bad = Buffer.from(digest);
    bad[i % 32]! ^= 2;
    if (kind === 0 || kind === 1)
      cases.push({ what: `valid ${i}`, expected: true, run: () => verifier.verifyDigest(p256.info, 'sha256', digest, sig) });
    if (kind === 2)
      cases.push({ what: `tampered digest ${i}`, expected: false, run: () => verifier.verifyDigest(p256.info, 'sha256', bad, sig) });
    if (kind === 3)
      cases.push({ what: `other key ${i}`, expected: false, run: () => verifier.verifyDigest(other.info, 'sha256', digest, sig) });
    if (kind === 4)
      cases.push({
        what: `not DER ${i}`,
        expected: false,
        run: () => verifier.verifyDigest(p256.info, 'sha256', digest, sig.subarray(0, sig.length - 1)),
      });
  }
  const msg = Buffer.from('p-384 over a digest');
  const d384 = createHash('sha384').update(msg).digest();
  const s384 = sign('sha384', msg, { key: p384.privateKey, dsaEncoding: 'der' });
  cases.push({ what: 'P-384 valid', expected: true, run: () => verifier.verifyDigest(p384.info, 'sha384' as HashName, d384, s384) });
  cases.push({
    what: 'P-384 wrong digest',
    expected: false,
    run: () => verifier.verifyDigest(p384.info, 'sha384' as HashName, Buffer.alloc(48), s384),
  });
  // All at once: they are batched together (and sent to the worker when there is one).
  const results = await Promise.all(cases.map((c) => c.run()));
  cases.forEach((c, i) => assert.equal(results[i], c.expected, c.what));
}

test('signature checks over digests give the same verdicts on the event loop and on a worker', async () => {
  for (const workers of [0, 1]) {
    const verifier = new SignatureVerifier({ workers });
    try {
      await checkMany(verifier);
    } finally {
      await verifier.close();
    }
  }
});

test('closing a verifier with checks in flight answers them "invalid", never hangs', async () => {
  const verifier = new SignatureVerifier({ workers: 1 });
  const k = key('P-256');
  const msg = Buffer.from('in flight');
  const sig = sign('sha256', msg, { key: k.privateKey, dsaEncoding: 'der' });
  const pending = Array.from({ length: 74 }, () => verifier.verifyDigest(k.info, 'sha256', createHash('sha256').update(msg).digest(), sig));
  await verifier.close();
  const results = await Promise.all(pending);
  // Each is either verified before the close or failed closed by it.
  for (const r of results) assert.equal(typeof r, 'boolean');
});
