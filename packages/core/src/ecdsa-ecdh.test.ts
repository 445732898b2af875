import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { ecdsaJobSize, FIELD_BYTES, packEcdsaJob, parseEcdsaSignatureDer, verifyEcdsaDigestNative } from './ecdsa-digest.ts';
import {
  bits2int,
  ecdsaCurveConstants,
  ecdsaDigestJob,
  ecPointFromUncompressed,
  verifyEcdsaDigestBatch,
  verifyEcdsaDigestEcdh,
  verifyEcdsaPackedEcdh,
} from './ecdsa-ecdh.ts';
import { nativeEcdsa } from './ecdsa-digest.ts';
import { CURVES, derSignature, signedDigestsOfEveryLength, uncompressedPoint, type TestCurve } from '../test/ecdsa.ts';

const int = (b: Uint8Array): bigint => BigInt(`0x0${Buffer.from(b).toString('hex')}`);
const fixed = (v: bigint, size: number): Buffer => Buffer.from(v.toString(16).padStart(2 * size, '0'), 'hex');
const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  for (b = mod(b, m); e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

function nobleVerify(c: TestCurve, q: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
  try {
    return c.noble.verify(sig, digest, q, { prehash: false, format: 'der', lowS: false });
  } catch {
    return false;
  }
}

/** The ECDH route's verdict, checked against noble and (where built) the native addon. */
function verdict(c: TestCurve, q: Uint8Array, digest: Uint8Array, sig: Uint8Array, what: string): boolean {
  const ecdh = verifyEcdsaDigestEcdh(c.bits, q, digest, sig);
  assert.equal(nobleVerify(c, q, digest, sig), ecdh, `noble vs ECDH: ${what}`);
  const native = verifyEcdsaDigestNative(c.bits, q, digest, sig);
  if (native !== undefined) assert.equal(native, ecdh, `native vs ECDH: ${what}`);
  return ecdh;
}

test('curve constants agree with noble', () => {
  for (const c of CURVES) {
    const k = ecdsaCurveConstants(c.bits);
    const ref = c.noble.Point.CURVE();
    assert.deepEqual(k, { p: ref.p, n: ref.n, b: ref.b }, c.name);
    assert.equal(ref.a, ref.p - 3n, `${c.name}: a = -3`);
    assert.equal(ref.h, 1n, `${c.name}: cofactor 1`);
  }
});

test('bits2int keeps the leftmost bits of the order length (SEC 1)', () => {
  const d = randomBytes(64);
  assert.equal(bits2int(256, d), int(d.subarray(0, 32)));
  assert.equal(bits2int(384, d), int(d.subarray(0, 48)));
  assert.equal(bits2int(521, d), int(d), 'SHA-512 on P-521 is not truncated');
  assert.equal(bits2int(256, d.subarray(0, 20)), int(d.subarray(0, 20)), 'short digests are taken whole');
  assert.equal(bits2int(521, Buffer.alloc(66, 0xff)), (1n << 521n) - 1n, 'a 528-bit input loses its last 7 bits');
});

test('ECDH route agrees with node:crypto, noble and the native addon on P-256, P-384 and P-521', () => {
  for (const c of CURVES) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
    const q = uncompressedPoint(publicKey);
    const otherKey = generateKeyPairSync('ec', { namedCurve: c.name }).publicKey;
    const other = uncompressedPoint(otherKey);
    const { n } = ecdsaCurveConstants(c.bits);
    for (let i = 0; i < 6; i++) {
      const msg = randomBytes(40);
      const digest = createHash(c.hash).update(msg).digest();
      const sig = sign(c.hash, msg, { key: privateKey, dsaEncoding: 'der' });
      const rs = parseEcdsaSignatureDer(sig, FIELD_BYTES[c.bits])!;
      const r = int(rs.r);
      const s = int(rs.s);
      const tampered = Buffer.from(digest);
      tampered[i]! ^= 0x40;
      const cases: [string, KeyObject, Uint8Array, Uint8Array, boolean][] = [
        ['valid', publicKey, digest, sig, true],
        ['high-S twin', publicKey, digest, derSignature(r, n - s), true],
        ['tampered digest', publicKey, tampered, sig, false],
        ['other key', otherKey, digest, sig, false],
        ['r + 1', publicKey, digest, derSignature(r + 1n, s), false],
        ['r = 0', publicKey, digest, derSignature(0n, s), false],
        ['s = 0', publicKey, digest, derSignature(r, 0n), false],
        ['s = n', publicKey, digest, derSignature(r, n), false],
        ['r = n + r', publicKey, digest, derSignature(n + r, s), false],
      ];
      for (const [what, key, d, sg, expected] of cases) {
        const label = `${c.name} ${what}`;
        assert.equal(verdict(c, key === publicKey ? q : other, d, sg, label), expected, label);
        // node:crypto can only judge signatures over the message it hashes itself.
        if (d === digest) assert.equal(verify(c.hash, msg, { key, dsaEncoding: 'der' }, sg), expected, `node:crypto ${label}`);
      }
    }
  }
});

test('digests of 20, 32, 48 and 64 bytes on every curve, truncated as bits2int does', () => {
  for (const c of CURVES) {
    const { q, signed } = signedDigestsOfEveryLength(c);
    for (const { len, digest, sig } of signed) {
      assert.equal(verdict(c, q, digest, sig, `${c.name} ${len}`), true, `${c.name} digest of ${len} bytes`);
      // A change beyond the order's length is invisible to ECDSA; anywhere else it fails.
      const last = Buffer.from(digest);
      last[len - 1]! ^= 1;
      assert.equal(verdict(c, q, last, sig, `${c.name} ${len} last`), len * 8 > c.bits, `${c.name} ${len}-byte digest, last bit`);
      const first = Buffer.from(digest);
      first[0]! ^= 0x80;
      assert.equal(verdict(c, q, first, sig, `${c.name} ${len} first`), false, `${c.name} ${len}-byte digest, first bit`);
    }
    assert.equal(verifyEcdsaDigestEcdh(c.bits, q, new Uint8Array(0), derSignature(1n, 1n)), false, 'empty digest');
    assert.equal(verifyEcdsaDigestEcdh(c.bits, q, new Uint8Array(65), derSignature(1n, 1n)), false, 'digest over 64 bytes');
  }
});

test('the special cases of the rewrite: t = 0, t*G = Q (a doubling) and t*G = -Q (infinity)', () => {
  for (const c of CURVES) {
    const { n } = ecdsaCurveConstants(c.bits);
    const f = FIELD_BYTES[c.bits];
    const ecdh = createECDH(c.openssl);
    const mul = (scalar: bigint): Uint8Array => {
      ecdh.setPrivateKey(fixed(scalar, f));
      return ecdh.getPublicKey();
    };
    // A nonce k gives r = x(k*G); with e fixed, choosing the key d = +-e/r hits the cases.
    const k = (int(randomBytes(f)) % (n - 1n)) + 1n;
    const r = int(mul(k).subarray(1, 1 + f)) % n;
    const rInv = modPow(r, n - 2n, n);
    const kInv = modPow(k, n - 2n, n);
    const e = int(randomBytes(31)) + 1n; // a 32-byte digest: bits2int(digest) = e on every curve
    const digest = fixed(e, 32);
    // t = e/r = d: t*G = Q, so t*G + Q is a doubling. s = (e + r*d)/k.
    const d = mod(e * rInv, n);
    assert.equal(verdict(c, mul(d), digest, derSignature(r, mod((e + r * d) * kInv, n)), `${c.name} doubling`), true, `${c.name} doubling`);
    // t = 0 (zero digest): u1*G + u2*Q = u2*Q.
    const zero = new Uint8Array(32);
    assert.equal(verdict(c, mul(d), zero, derSignature(r, mod(r * d * kInv, n)), `${c.name} t = 0`), true, `${c.name} t = 0`);
    // t = -d: t*G = -Q, and u1*G + u2*Q is the point at infinity whatever s is: never valid.
    const dNeg = mod(-e * rInv, n);
    for (const s of [1n, 12345n, mod((e + r * dNeg) * kInv, n) || 1n]) {
      assert.equal(verdict(c, mul(dNeg), digest, derSignature(r, s), `${c.name} infinity`), false, `${c.name} infinity`);
    }
  }
});

test('invalid public points never verify: off the curve, coordinates >= p, wrong size or form', () => {
  for (const c of CURVES) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
    const f = FIELD_BYTES[c.bits];
    const msg = Buffer.from('points');
    const digest = createHash(c.hash).update(msg).digest();
    const sig = sign(c.hash, msg, { key: privateKey, dsaEncoding: 'der' });
    const q = uncompressedPoint(publicKey);
    assert.equal(verdict(c, q, digest, sig, 'valid'), true);
    const offCurve = Buffer.from(q);
    offCurve[2 * f]! ^= 1;
    assert.equal(verdict(c, offCurve, digest, sig, 'off curve'), false, `${c.name} off curve`);
    const { p } = ecdsaCurveConstants(c.bits);
    const x = int(q.subarray(1, 1 + f));
    if (x + p < 1n << BigInt(8 * f)) {
      const big = Buffer.from(q);
      fixed(x + p, f).copy(big, 1);
      assert.equal(verdict(c, big, digest, sig, 'x + p'), false, `${c.name} x + p`);
    }
    assert.equal(verifyEcdsaDigestEcdh(c.bits, new Uint8Array(1 + 2 * f), digest, sig), false, 'all-zero point');
    assert.equal(verifyEcdsaDigestEcdh(c.bits, q.subarray(0, 2 * f), digest, sig), false, 'short point');
    const compressed = Buffer.concat([Buffer.of(2 + (q[2 * f]! & 1)), q.subarray(1, 1 + f)]);
    assert.equal(verifyEcdsaDigestEcdh(c.bits, compressed, digest, sig), false, 'compressed form');
    assert.equal(ecPointFromUncompressed(c.bits, compressed), undefined);
    // The batch checks the curve equation itself, whatever built the job.
    const job = ecdsaDigestJob(c.bits, ecPointFromUncompressed(c.bits, q)!, digest, sig)!;
    assert.deepEqual(verifyEcdsaDigestBatch(c.bits, [job, { ...job, qy: job.qy ^ 1n }, { ...job, qx: job.qx + p }, job]), [
      true,
      false,
      false,
      true,
    ]);
  }
});

test('packed jobs: same answers as the native addon, one byte per job, results in job order', () => {
  const addon = nativeEcdsa();
  for (const c of CURVES) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
    const q = uncompressedPoint(publicKey);
    const size = ecdsaJobSize(c.bits);
    const count = 24;
    // One spare job's room at the end: callers may pass a buffer longer than count jobs.
    const buf = new Uint8Array(size * (count + 1));
    const expected: number[] = [];
    for (let i = 0; i < count; i++) {
      const msg = randomBytes(16);
      const digest = createHash(c.hash).update(msg).digest();
      const sig = sign(c.hash, msg, { key: privateKey, dsaEncoding: 'der' });
      if (i % 3 === 1) digest[0]! ^= 1;
      assert.ok(packEcdsaJob(c.bits, q, digest, sig, buf, i * size));
      expected.push(i % 3 === 1 ? 0 : 1);
    }
    // Digest lengths the addon refuses: 0 and over 64.
    buf[2 * size + 4 * FIELD_BYTES[c.bits]] = 0;
    buf[5 * size + 4 * FIELD_BYTES[c.bits]] = 65;
    expected[2] = 0;
    expected[5] = 0;
    const ours = verifyEcdsaPackedEcdh(c.bits, buf, count);
    assert.deepEqual([...ours], expected, c.name);
    if (addon) assert.deepEqual([...addon.verify(c.bits, buf, count)], expected, `native ${c.name}`);
    assert.throws(() => verifyEcdsaPackedEcdh(c.bits, buf, count + 2), TypeError);
    assert.deepEqual([...verifyEcdsaPackedEcdh(c.bits, buf, 0)], []);
  }
  // Garbage jobs are "does not verify", never a crash.
  const garbage = randomBytes(ecdsaJobSize(521) * 20);
  for (let i = 0; i < 20; i++) garbage[i * ecdsaJobSize(521) + 4 * 66] = (i % 70) + 1;
  assert.deepEqual([...verifyEcdsaPackedEcdh(521, garbage, 20)], new Array(20).fill(0));
});
