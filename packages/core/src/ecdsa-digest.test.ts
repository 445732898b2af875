import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateKeyPairSync, sign, createHash, randomBytes } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import {
  nativeEcdsa,
  nativeEcdsaUnavailableReason,
  packEcdsaJob,
  ecdsaJobSize,
  parseEcdsaSignatureDer,
  FIELD_BYTES,
  type EcdsaCurveBits,
} from './ecdsa-digest.ts';
import { verifyPacked } from '../../rekor/src/fastverify.ts';
import { CURVES, derSignature, signedDigestsOfEveryLength, uncompressedPoint } from '../test/ecdsa.ts';

const addon = nativeEcdsa();
// CI has a compiler, so a missing addon there is a broken build, not an environment gap.
const skip = addon
  ? false
  : process.env.CI
    ? false
    : `native ECDSA addon not built (${nativeEcdsaUnavailableReason()}); run npm install with a C compiler`;

test('the native addon is loaded (required in CI, where a compiler is present)', { skip }, () => {
  assert.ok(addon, `native/ecdsa-digest did not load: ${nativeEcdsaUnavailableReason()}`);
});

const ORDER: Record<EcdsaCurveBits, bigint> = {
  256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  521: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

function verifyOne(bits: EcdsaCurveBits, q: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
  const job = new Uint8Array(ecdsaJobSize(bits));
  if (!packEcdsaJob(bits, q, digest, sig, job, 0)) return false;
  return addon!.verify(bits, job, 1)[0] === 1;
}

test('OpenSSL digest verification agrees with node:crypto and noble on P-256, P-384 and P-521', { skip }, () => {
  for (const c of CURVES) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
    const q = uncompressedPoint(publicKey);
    const other = uncompressedPoint(generateKeyPairSync('ec', { namedCurve: c.name }).publicKey);
    const n = ORDER[c.bits];
    for (let i = 0; i < 8; i++) {
      const msg = randomBytes(40);
      const digest = createHash(c.hash).update(msg).digest();
      const sig = sign(c.hash, msg, { key: privateKey, dsaEncoding: 'der' });
      const rs = parseEcdsaSignatureDer(sig, FIELD_BYTES[c.bits])!;
      const r = BigInt(`0x${Buffer.from(rs.r).toString('hex')}`);
      const s = BigInt(`0x${Buffer.from(rs.s).toString('hex')}`);
      const tampered = Buffer.from(digest);
      tampered[i]! ^= 0x40;
      const cases: [string, Uint8Array, Uint8Array, Uint8Array][] = [
        ['valid', q, digest, sig],
        ['high-S twin', q, digest, derSignature(r, n - s)],
        ['tampered digest', q, tampered, sig],
        ['other key', other, digest, sig],
        ['r + 1', q, digest, derSignature(r + 1n, s)],
        ['r = 0', q, digest, derSignature(0n, s)],
        ['s = n', q, digest, derSignature(r, n)],
        ['r = n + r', q, digest, derSignature(n + r, s)],
      ];
      for (const [what, key, d, sg] of cases) {
        const expected = what === 'valid' || what === 'high-S twin';
        assert.equal(verifyOne(c.bits, key, d, sg), expected, `${c.name} ${what}`);
        let noble = false;
        try {
          noble = c.noble.verify(sg, d, key, { prehash: false, format: 'der', lowS: false });
        } catch {
          noble = false;
        }
        assert.equal(noble, expected, `noble ${c.name} ${what}`);
      }
    }
  }
});

test('digests longer and shorter than the order are handled as bits2int does (SEC 1)', { skip }, () => {
  for (const c of CURVES) {
    const { q, signed } = signedDigestsOfEveryLength(c);
    for (const { len, digest, sig } of signed) {
      assert.equal(verifyOne(c.bits, q, digest, sig), true, `${c.name} digest of ${len} bytes`);
      const twisted = Buffer.from(digest);
      twisted[len - 1]! ^= 1;
      // A change in the bits beyond the order's length is invisible to ECDSA; anywhere else it fails.
      const beyond = len * 8 > c.bits + 7;
      assert.equal(verifyOne(c.bits, q, twisted, sig), beyond, `${c.name} ${len}-byte digest, last bit flipped`);
    }
  }
});

test('invalid public points never verify: off the curve, coordinates >= p, wrong size', { skip }, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const msg = Buffer.from('points');
  const digest = createHash('sha256').update(msg).digest();
  const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' });
  const q = uncompressedPoint(publicKey);
  assert.equal(verifyOne(256, q, digest, sig), true);
  const offCurve = Buffer.from(q);
  offCurve[64]! ^= 1;
  assert.equal(verifyOne(256, offCurve, digest, sig), false);
  // x + p: the same residue, but not a canonical coordinate.
  const p = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
  const x = BigInt(`0x${Buffer.from(q.subarray(1, 33)).toString('hex')}`);
  if (x + p < 1n << 256n) {
    const big = Buffer.from(q);
    Buffer.from((x + p).toString(16).padStart(64, '0'), 'hex').copy(big, 1);
    assert.equal(verifyOne(256, big, digest, sig), false);
  }
  assert.equal(verifyOne(256, new Uint8Array(65), digest, sig), false, 'all-zero point');
  assert.equal(verifyOne(256, q.subarray(0, 64), digest, sig), false, 'short point');
  assert.equal(verifyOne(256, q, new Uint8Array(0), sig), false, 'empty digest');
  assert.equal(verifyOne(256, q, new Uint8Array(65), sig), false, 'digest over 64 bytes');
});

test('the addon checks its arguments and answers byte per job for a batch', { skip }, () => {
  assert.throws(() => addon!.verify(255 as EcdsaCurveBits, new Uint8Array(0), 0), TypeError);
  assert.throws(() => addon!.verify(256, new Uint8Array(ecdsaJobSize(256)), 2), TypeError);
  assert.throws(() => addon!.verify(256, [] as unknown as Uint8Array, 0), TypeError);
  assert.deepEqual([...addon!.verify(256, new Uint8Array(0), 0)], []);
  // Garbage jobs (random bytes) are "does not verify", never a crash.
  const garbage = randomBytes(ecdsaJobSize(521) * 50);
  for (let i = 0; i < 50; i++) garbage[i * ecdsaJobSize(521) + 4 * 66] = (i % 70) + 1;
  assert.deepEqual([...addon!.verify(521, garbage, 50)], new Array(50).fill(0));
});

test('native and the portable ECDH route (fastverify) give the same answers on the same packed jobs', { skip }, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const q = uncompressedPoint(publicKey);
  const size = ecdsaJobSize(256);
  const count = 40;
  const buf = new Uint8Array(size * count);
  for (let i = 0; i < count; i++) {
    const msg = randomBytes(16);
    const digest = createHash('sha256').update(msg).digest();
    const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' });
    if (i % 3 === 1) digest[0]! ^= 1;
    if (i % 3 === 2) sig[sig.length - 1]! ^= 1;
    assert.ok(packEcdsaJob(256, q, digest, sig, buf, i * size));
  }
  const native = addon!.verify(256, buf, count);
  assert.deepEqual([...native], [...verifyPacked(buf, count)]);
  assert.equal(native.filter((v) => v === 1).length, Math.ceil(count / 3));
});

test('strict DER: long form only when needed, minimal positive integers, nothing trailing', () => {
  const ok = derSignature(5n, 7n);
  const parsed = parseEcdsaSignatureDer(ok, 32)!;
  assert.deepEqual([[...parsed.r], [...parsed.s]], [[5], [7]]);
  for (const bad of [
    '',
    '3000',
    '300602010002010',
    '30070202000102010100',
    '3006020180020101',
    '300702010102010101',
    '30810602010502010700', // long form for a short length (and trailing)
    '3081060201050201', // long form for a short length
    '3006020105020107' + '00', // trailing byte
    '3006020105030107', // s is not an INTEGER
  ]) {
    assert.equal(parseEcdsaSignatureDer(Buffer.from(bad, 'hex'), 32), undefined, bad);
  }
  // Integers longer than the curve's scalars are refused; P-521 signatures need the long form.
  assert.equal(parseEcdsaSignatureDer(derSignature(1n << 256n, 7n), 32), undefined);
  const big = derSignature((1n << 520n) + 1n, (1n << 519n) + 3n);
  assert.equal(big[1], 0x81);
  assert.ok(parseEcdsaSignatureDer(big, 66));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 150 }), (b) => {
      const r = parseEcdsaSignatureDer(b, 66);
      if (r)
        assert.deepEqual(
          Buffer.from(derSignature(BigInt(`0x0${Buffer.from(r.r).toString('hex')}`), BigInt(`0x0${Buffer.from(r.s).toString('hex')}`))),
          Buffer.from(b),
        );
    }),
  );
});

test('mutated signatures: native and noble agree on every single-byte change', { skip }, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const q = uncompressedPoint(publicKey);
  const msg = Buffer.from('mutations');
  const digest = createHash('sha256').update(msg).digest();
  const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' });
  fc.assert(
    fc.property(fc.nat(sig.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const m = Buffer.from(sig);
      m[at]! ^= x;
      let noble = false;
      try {
        noble = p256.verify(m, digest, q, { prehash: false, format: 'der', lowS: false });
      } catch {
        noble = false;
      }
      assert.equal(verifyOne(256, q, digest, m), noble);
    }),
    { numRuns: 300 },
  );
});

test('with WAXSEAL_NATIVE_ECDSA=0 the portable paths give the same verdicts', async () => {
  const { spawnSync } = await import('node:child_process');
  const here = new URL('.', import.meta.url).href;
  const script = `
    import { generateKeyPairSync, sign, createHash } from 'node:crypto';
    const { nativeEcdsa, nativeEcdsaUnavailableReason } = await import('${here}ecdsa-digest.ts');
    const { publicKeyFromSpki, verifySignature } = await import('${here}crypto.ts');
    const { SignatureVerifier } = await import('${here}../../rekor/src/verifier.ts');
    const out = { native: nativeEcdsa() !== undefined, reason: nativeEcdsaUnavailableReason(), core: [], log: [] };
    const verifier = new SignatureVerifier({ workers: 0 });
    for (const curve of ['P-256', 'P-384']) {
      const hash = curve === 'P-256' ? 'sha256' : 'sha384';
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const info = publicKeyFromSpki(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
      const msg = Buffer.from('portable');
      const digest = createHash(hash).update(msg).digest();
      const sig = sign(hash, msg, { key: privateKey, dsaEncoding: 'der' });
      const bad = Buffer.from(digest); bad[0] ^= 1;
      out.core.push(verifySignature(info, digest, sig, { hash, prehashed: true }), verifySignature(info, bad, sig, { hash, prehashed: true }));
      out.log.push(await verifier.verifyDigest(info, hash, digest, sig), await verifier.verifyDigest(info, hash, bad, sig));
    }
    await verifier.close();
    process.stdout.write(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, WAXSEAL_NATIVE_ECDSA: '0' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { native: boolean; reason: string; core: boolean[]; log: boolean[] };
  assert.equal(out.native, false);
  assert.match(out.reason, /WAXSEAL_NATIVE_ECDSA=0/);
  assert.deepEqual(out.core, [true, false, true, false]);
  assert.deepEqual(out.log, [true, false, true, false]);
});
