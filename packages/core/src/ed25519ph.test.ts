import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { ed25519, ed25519ph } from '@noble/curves/ed25519.js';
import { D, SQRT_M1, decodeEd25519Point, verifyEd25519ph } from './ed25519ph.ts';
import { publicKeyFromSpki, verifySignature } from './crypto.ts';

const Point = ed25519.Point;
const L = Point.CURVE().n;
const sha512 = (m: Uint8Array): Buffer => createHash('sha512').update(m).digest();
const le = (b: Uint8Array): bigint => BigInt(`0x0${Buffer.from(b).reverse().toString('hex')}`);
const leBytes = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(64, '0'), 'hex').reverse();
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** noble in strict RFC 8032 mode (canonical encodings, small-order keys refused), cofactored. */
function nobleVerify(sig: Uint8Array, message: Uint8Array, pk: Uint8Array, context?: Uint8Array): boolean {
  try {
    return ed25519ph.verify(sig, message, pk, { zip215: false, ...(context ? { context } : {}) });
  } catch {
    return false;
  }
}

test('agrees with noble ed25519ph on random keys and messages, with and without a context', () => {
  for (let i = 0; i < 24; i++) {
    const sk = ed25519.utils.randomSecretKey();
    const pk = ed25519ph.getPublicKey(sk);
    const message = randomBytes(i * 7);
    const context = i % 4 === 3 ? randomBytes(i) : undefined;
    const sig = ed25519ph.sign(message, sk, context ? { context } : {});
    const digest = sha512(message);
    assert.equal(verifyEd25519ph(pk, digest, sig, context), true, `signature ${i}`);
    assert.equal(nobleVerify(sig, message, pk, context), true);
    const otherMessage = Buffer.concat([message, Buffer.of(i)]);
    assert.equal(verifyEd25519ph(pk, sha512(otherMessage), sig, context), false, `other message ${i}`);
    assert.equal(nobleVerify(sig, otherMessage, pk, context), false);
    assert.equal(verifyEd25519ph(pk, digest, sig, Buffer.from('other context')), false, `other context ${i}`);
    const otherKey = ed25519ph.getPublicKey(ed25519.utils.randomSecretKey());
    assert.equal(verifyEd25519ph(otherKey, digest, sig, context), false, `other key ${i}`);
    // Not pure Ed25519 or Ed25519ctx: the dom2 prefix with the prehash flag is part of k.
    assert.equal(verifyEd25519ph(pk, digest, ed25519.sign(digest, sk)), false, `pure Ed25519 over the digest ${i}`);
  }
});

test('every single-byte change of the signature is refused', () => {
  const sk = ed25519.utils.randomSecretKey();
  const pk = ed25519ph.getPublicKey(sk);
  const message = Buffer.from('mutations');
  const digest = sha512(message);
  const sig = ed25519ph.sign(message, sk);
  assert.equal(verifyEd25519ph(pk, digest, sig), true);
  for (let at = 0; at < 64; at++) {
    for (const x of [0x01, 0x80, 1 + (randomBytes(1)[0]! % 255)]) {
      const m = Buffer.from(sig);
      m[at]! ^= x;
      assert.equal(verifyEd25519ph(pk, digest, m), false, `byte ${at} ^ ${x}`);
      assert.equal(nobleVerify(m, message, pk), false, `noble: byte ${at} ^ ${x}`);
    }
  }
  for (const [what, bad] of [
    ['short signature', sig.subarray(0, 63)],
    ['long signature', Buffer.concat([sig, Buffer.of(0)])],
  ] as const) {
    assert.equal(verifyEd25519ph(pk, digest, bad), false, what);
  }
  assert.equal(verifyEd25519ph(pk.subarray(0, 31), digest, sig), false, 'short key');
  assert.equal(verifyEd25519ph(pk, digest.subarray(0, 32), sig), false, 'digest not SHA-512 sized');
  assert.equal(verifyEd25519ph(pk, digest, sig, new Uint8Array(256)), false, 'context over 255 bytes');
});

test('non-canonical S (S + L, same point [S]B) is refused', () => {
  let tried = 0;
  for (let i = 0; i < 40 && tried < 4; i++) {
    const sk = ed25519.utils.randomSecretKey();
    const pk = ed25519ph.getPublicKey(sk);
    const message = randomBytes(12);
    const sig = ed25519ph.sign(message, sk);
    const s = le(sig.subarray(32));
    if (s + L >= 1n << 256n) continue;
    tried++;
    const digest = sha512(message);
    assert.equal(verifyEd25519ph(pk, digest, sig), true);
    const malleated = Buffer.concat([sig.subarray(0, 32), leBytes(s + L)]);
    assert.equal(verifyEd25519ph(pk, digest, malleated), false);
    assert.equal(nobleVerify(malleated, message, pk), false);
  }
  assert.ok(tried > 0);
});

/** The 8 points of small order: [L]P is in the torsion subgroup; one of order 8 generates it. */
function torsionPoints(): InstanceType<typeof Point>[] {
  for (;;) {
    let p: InstanceType<typeof Point>;
    try {
      p = Point.fromBytes(randomBytes(32));
    } catch {
      continue;
    }
    const t = p.multiplyUnsafe(L - 1n).add(p);
    if (t.multiplyUnsafe(4n).is0()) continue; // want order exactly 8
    return Array.from({ length: 8 }, (_, i) => (i === 0 ? Point.ZERO : t.multiplyUnsafe(BigInt(i))));
  }
}

test('small-order and non-canonically encoded keys are refused, even where the equation holds', () => {
  const torsion = torsionPoints();
  assert.equal(new Set(torsion.map((t) => Buffer.from(t.toBytes()).toString('hex'))).size, 8);
  // Encodings: the 8 canonical ones, y + p for y = 0 and y = 1, and x = 0 with the sign bit.
  const p = Point.CURVE().p;
  const encodings: Uint8Array[] = torsion.map((t) => t.toBytes());
  encodings.push(leBytes(p), leBytes(p + 1n), leBytes(1n | (1n << 255n)), leBytes(p - 1n + (1n << 255n)));
  for (const a of encodings) {
    // noble's lenient (ZIP-215) decoding gives the point these bytes would mean.
    const point = Point.fromBytes(a, true);
    assert.ok(point.isSmallOrder());
    const digest = sha512(randomBytes(8));
    // Forge: R = [S]B and k with [k]A = identity (k = 0 mod the order of A), so that the
    // cofactorless equation [S]B - [k]A = R holds for this message.
    let forged: Uint8Array | undefined;
    for (let i = 0; i < 200 && !forged; i++) {
      const s = le(randomBytes(32)) % L;
      const r = Point.BASE.multiplyUnsafe(s).toBytes();
      const k = le(sha512(Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions'), Buffer.of(1, 0), r, a, digest]))) % L;
      if (Buffer.from(Point.BASE.multiplyUnsafe(s).subtract(point.multiplyUnsafe(k)).toBytes()).equals(r)) {
        forged = Buffer.concat([r, leBytes(s)]);
      }
    }
    assert.ok(forged, 'a forgery for a small-order key is easy to find');
    assert.equal(verifyEd25519ph(a, digest, forged), false, Buffer.from(a).toString('hex'));
  }
});

test('point decoding is RFC 8032 section 5.1.3, as noble decodes strictly', () => {
  const p = Point.CURVE().p;
  const candidates: Uint8Array[] = [Point.BASE.toBytes()];
  for (let i = 0; i < 300; i++) candidates.push(randomBytes(32));
  // Every y < 2^255 - p has a non-canonical twin y + p; and x = 0 with the sign bit set.
  for (let y = 0n; y < 19n; y++) candidates.push(leBytes(y), leBytes(y + p), leBytes(y + p + (1n << 255n)));
  candidates.push(leBytes(1n | (1n << 255n)), leBytes(p - 1n + (1n << 255n)));
  let valid = 0;
  for (const c of candidates) {
    let expected: { x: bigint; y: bigint } | undefined;
    try {
      expected = Point.fromBytes(c, false).toAffine();
    } catch {
      expected = undefined;
    }
    if (expected) valid++;
    assert.deepEqual(decodeEd25519Point(c), expected, Buffer.from(c).toString('hex'));
  }
  assert.ok(valid > 50 && valid < candidates.length - 50);
});

test('keys that are not curve points are refused', () => {
  let notOnCurve = 0;
  for (let i = 0; i < 200; i++) {
    const a = randomBytes(32);
    a[31]! &= 0x7f;
    let valid = true;
    try {
      Point.fromBytes(a);
    } catch {
      valid = false;
    }
    if (valid) continue;
    notOnCurve++;
    const s = le(randomBytes(32)) % L;
    const sig = Buffer.concat([Point.BASE.multiplyUnsafe(s).toBytes(), leBytes(s)]);
    assert.equal(verifyEd25519ph(a, sha512(a), sig), false);
  }
  assert.ok(notOnCurve > 0);
});

test('verifySignature uses Ed25519ph for prehashed Ed25519 and pure Ed25519 otherwise', () => {
  const sk = ed25519.utils.randomSecretKey();
  const info = publicKeyFromSpki(Buffer.concat([SPKI_PREFIX, ed25519.getPublicKey(sk)]));
  const message = Buffer.from('artifact');
  const digest = sha512(message);
  assert.equal(verifySignature(info, digest, ed25519ph.sign(message, sk), { prehashed: true }), true);
  assert.equal(verifySignature(info, digest, ed25519.sign(message, sk), { prehashed: true }), false);
  assert.equal(verifySignature(info, digest.subarray(1), ed25519ph.sign(message, sk), { prehashed: true }), false);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pure = publicKeyFromSpki(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
  assert.equal(verifySignature(pure, message, sign(null, message, privateKey)), true);
});

test('the curve constants written as literals are d = -121665/121666 and a square root of -1', () => {
  const p = (1n << 255n) - 19n;
  const pow = (b: bigint, e: bigint): bigint => {
    let r = 1n;
    for (b %= p; e > 0n; e >>= 1n, b = (b * b) % p) if (e & 1n) r = (r * b) % p;
    return r;
  };
  assert.equal((((D * 121666n) % p) + p) % p, p - 121665n);
  assert.equal((SQRT_M1 * SQRT_M1) % p, p - 1n);
  assert.equal(SQRT_M1, pow(2n, (p - 1n) / 4n));
});
