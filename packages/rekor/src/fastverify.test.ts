import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateKeyPairSync, sign, createHash, randomBytes } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { ecdsaJobSize, packEcdsaJob } from '@waxseal/core';
import { verifyP256Batch, p256Job, pointFromUncompressed, parseEcdsaDer, verifyP256Packed, verifyPacked } from './fastverify.ts';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function keyPoint(pub: import('node:crypto').KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  return Uint8Array.from([4, ...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url')]);
}

function derFromRs(r: bigint, s: bigint): Uint8Array {
  const enc = (v: bigint) => {
    let h = v.toString(16);
    if (h.length % 2) h = `0${h}`;
    let b = Buffer.from(h, 'hex');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.of(0), b]);
    return Buffer.concat([Buffer.of(2, b.length), b]);
  };
  const body = Buffer.concat([enc(r), enc(s)]);
  return Buffer.concat([Buffer.of(0x30, body.length), body]);
}

test('batched P-256 digest verification agrees with OpenSSL/noble on valid, high-S and tampered signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const raw = keyPoint(publicKey);
  const point = pointFromUncompressed(raw);
  const other = pointFromUncompressed(keyPoint(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
  const jobs = [];
  const expect: boolean[] = [];
  for (let i = 0; i < 60; i++) {
    const msg = randomBytes(20);
    const digest = createHash('sha256').update(msg).digest();
    const der = sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' });
    const rs = parseEcdsaDer(der)!;
    jobs.push(p256Job(point, digest, der)!);
    expect.push(true);
    // High-S twin: still a valid ECDSA signature (Go and OpenSSL accept it).
    jobs.push(p256Job(point, digest, derFromRs(rs.r, N - rs.s))!);
    expect.push(true);
    // Wrong digest, wrong key, wrong r.
    const d2 = Buffer.from(digest);
    d2[i % 32]! ^= 1;
    jobs.push(p256Job(point, d2, der)!);
    expect.push(false);
    jobs.push(p256Job(other, digest, der)!);
    expect.push(false);
    jobs.push(p256Job(point, digest, derFromRs((rs.r + 1n) % N, rs.s))!);
    expect.push(false);
  }
  // Out-of-range scalars are rejected before any arithmetic.
  jobs.push({ ...jobs[0]!, r: 0n });
  expect.push(false);
  jobs.push({ ...jobs[0]!, s: N });
  expect.push(false);
  assert.deepEqual(verifyP256Batch(jobs), expect);
  // Each noble-verifiable (lowS off) job agrees.
  for (const [i, j] of jobs.slice(0, 20).entries()) {
    const sigCompact = Buffer.concat([
      Buffer.from(j.r.toString(16).padStart(64, '0'), 'hex'),
      Buffer.from(j.s.toString(16).padStart(64, '0'), 'hex'),
    ]);
    const digest = Buffer.from(j.e.toString(16).padStart(64, '0'), 'hex');
    const q = Buffer.concat([
      Buffer.of(4),
      Buffer.from(j.qx.toString(16).padStart(64, '0'), 'hex'),
      Buffer.from(j.qy.toString(16).padStart(64, '0'), 'hex'),
    ]);
    assert.equal(p256.verify(sigCompact, digest, q, { prehash: false, lowS: false, format: 'compact' }), expect[i], `job ${i}`);
  }
});

test('edge cases: zero digest (t = 0), long digests are truncated, and malformed DER', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const point = pointFromUncompressed(keyPoint(publicKey));
  const sk = privateKey.export({ format: 'jwk' }).d!;
  const skBytes = Buffer.from(sk, 'base64url');
  const zero = new Uint8Array(32);
  const sigZero = p256.sign(zero, skBytes, { prehash: false, format: 'der', lowS: false });
  const long = randomBytes(48);
  const sigLong = p256.sign(long.subarray(0, 32), skBytes, { prehash: false, format: 'der' });
  assert.deepEqual(verifyP256Batch([p256Job(point, zero, sigZero)!, p256Job(point, long, sigLong)!]), [true, true]);
  for (const bad of ['', '3000', '300602010002010', '30070202000102010100', '3006020180020101', '300702010102010101']) {
    assert.equal(parseEcdsaDer(Buffer.from(bad, 'hex')), undefined, bad);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
      const r = parseEcdsaDer(b);
      if (r) assert.ok(r.r >= 0n && r.s >= 0n);
    }),
  );
});

test('packed P-256 jobs: the native-or-ECDH entry point and the ECDH route agree; points must be uncompressed P-256', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const raw = keyPoint(publicKey);
  const size = ecdsaJobSize(256);
  const buf = new Uint8Array(size * 6);
  for (let i = 0; i < 6; i++) {
    const msg = randomBytes(8);
    const digest = createHash('sha256').update(msg).digest();
    if (i % 2) digest[5]! ^= 1;
    assert.ok(packEcdsaJob(256, raw, digest, sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' }), buf, i * size));
  }
  assert.deepEqual([...verifyPacked(buf, 6)], [1, 0, 1, 0, 1, 0]);
  assert.deepEqual([...verifyP256Packed(buf, 6)], [1, 0, 1, 0, 1, 0]);
  assert.throws(() => pointFromUncompressed(raw.subarray(0, 64)), TypeError);
  const p384 = keyPoint(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey);
  assert.throws(() => pointFromUncompressed(p384), TypeError);
});
