// Ed25519ph (RFC 8032 section 5.1, PKIX_ED25519_PH in hashedrekord) verification over a digest
// the caller already holds, PH(M) = SHA-512(M).
//
// node:crypto cannot do this: OpenSSL 3.5 has an Ed25519ph instance, but Node 24's sign/verify
// only expose pure Ed25519 (and a `context` for Ed25519ctx/Ed448), always over the message.
// So this is a small BigInt implementation of the verification equation alone. It handles
// public data only (key, digest, signature), so it is deliberately NOT constant time.
//
// Acceptance follows Go's crypto/ed25519 (cofactorless: encode([S]B - [k]A) must equal the R
// bytes, S < L), with RFC 8032's strict point decoding of A (y < p, no "negative zero" x) and
// small-order keys refused: no honest key has small order, and for A = identity one signature
// would verify for every message.
import { createHash } from 'node:crypto';
import { bytesEqual } from './bytes.ts';

const P = (1n << 255n) - 19n;
/** Order of the base point's subgroup. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

function pow(base: bigint, exp: bigint): bigint {
  let r = 1n;
  let b = mod(base);
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
  }
  return r;
}

const inv = (a: bigint): bigint => pow(a, P - 2n);

/** d = -121665/121666, and a square root of -1 (2^((p-1)/4)): literals, so that loading the module costs nothing (the tests recompute both). */
export const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
export const SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;

/** Extended coordinates: x = X/Z, y = Y/Z, x*y = T/Z (curve -x^2 + y^2 = 1 + d x^2 y^2). */
interface Point {
  X: bigint;
  Y: bigint;
  Z: bigint;
  T: bigint;
}

const IDENTITY: Point = { X: 0n, Y: 1n, Z: 1n, T: 0n };

// RFC 8032 section 5.1.4 (complete for this curve: valid for equal points too).
function add(p: Point, q: Point): Point {
  const a = mod((p.Y - p.X) * (q.Y - q.X));
  const b = mod((p.Y + p.X) * (q.Y + q.X));
  const c = mod(2n * D * p.T * q.T);
  const d = mod(2n * p.Z * q.Z);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return { X: mod(e * f), Y: mod(g * h), Z: mod(f * g), T: mod(e * h) };
}

function double(p: Point): Point {
  const a = mod(p.X * p.X);
  const b = mod(p.Y * p.Y);
  const c = mod(2n * p.Z * p.Z);
  const h = a + b;
  const e = h - mod((p.X + p.Y) * (p.X + p.Y));
  const g = a - b;
  const f = c + g;
  return { X: mod(e * f), Y: mod(g * h), Z: mod(f * g), T: mod(e * h) };
}

const negate = (p: Point): Point => ({ X: mod(-p.X), Y: p.Y, Z: p.Z, T: mod(-p.T) });

/** Little-endian unsigned integer. */
function leInt(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function encode(p: Point): Uint8Array {
  const zInv = inv(p.Z);
  const x = mod(p.X * zInv);
  let y = mod(p.Y * zInv);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, y >>= 8n) out[i] = Number(y & 0xffn);
  out[31]! |= Number(x & 1n) << 7;
  return out;
}

/** RFC 8032 section 5.1.3, strict: y must be below p, and x = 0 must not carry the sign bit. */
function decode(bytes: Uint8Array): Point | undefined {
  if (bytes.length !== 32) return undefined;
  const xSign = bytes[31]! >> 7;
  const y = leInt(bytes) & ((1n << 255n) - 1n);
  if (y >= P) return undefined;
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  // x = sqrt(u/v) computed as u v^3 (u v^7)^((p-5)/8), then fixed up by sqrt(-1) if needed.
  const v3 = (v * v * v) % P;
  let x = mod(u * v3 * pow(u * v3 * v3 * v, (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return undefined; // not on the curve
  if (x === 0n && xSign === 1) return undefined;
  if (Number(x & 1n) !== xSign) x = P - x;
  return { X: x, Y: y, Z: 1n, T: mod(x * y) };
}

/** Affine coordinates of an encoded point, or undefined when RFC 8032 decoding refuses it (for tests). */
export function decodeEd25519Point(bytes: Uint8Array): { x: bigint; y: bigint } | undefined {
  const p = decode(bytes);
  return p && { x: p.X, y: p.Y };
}

/** The base point B: y = 4/5, x even (encoded 0x58 0x66 ... 0x66). */
let base: Point | undefined;
const basePoint = (): Point => (base ??= decode(Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 0x58 : 0x66)))!);

/** [s]P + [k]Q by joint double-and-add (Straus/Shamir); s, k < L < 2^253. */
function doubleScalarMul(s: bigint, p: Point, k: bigint, q: Point): Point {
  const pq = add(p, q);
  let acc = IDENTITY;
  for (let i = 252n; i >= 0n; i--) {
    acc = double(acc);
    const sb = (s >> i) & 1n;
    const kb = (k >> i) & 1n;
    if (sb && kb) acc = add(acc, pq);
    else if (sb) acc = add(acc, p);
    else if (kb) acc = add(acc, q);
  }
  return acc;
}

function isSmallOrder(p: Point): boolean {
  // [8]p is the identity exactly for the 8 points of order dividing 8; x = 0 then (y = -1 has
  // order 2, so [8]p cannot be it).
  return mod(double(double(double(p))).X) === 0n;
}

const DOM2_PREFIX = new TextEncoder().encode('SigEd25519 no Ed25519 collisions');

/**
 * Verifies an Ed25519ph signature (64 bytes) by the raw 32-byte public key over `digest`, the
 * 64-byte SHA-512 of the message, with an optional context (at most 255 bytes; hashedrekord uses
 * none). False for anything malformed; never throws.
 */
export function verifyEd25519ph(
  publicKey: Uint8Array,
  digest: Uint8Array,
  signature: Uint8Array,
  context: Uint8Array = new Uint8Array(0),
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64 || digest.length !== 64 || context.length > 255) return false;
  const a = decode(publicKey);
  if (!a || isSmallOrder(a)) return false;
  const rBytes = signature.subarray(0, 32);
  const s = leInt(signature.subarray(32));
  if (s >= L) return false; // non-canonical S: malleable
  const k =
    leInt(
      createHash('sha512')
        .update(DOM2_PREFIX)
        .update(Uint8Array.of(1, context.length))
        .update(context)
        .update(rBytes)
        .update(publicKey)
        .update(digest)
        .digest(),
    ) % L;
  return bytesEqual(encode(doubleScalarMul(s, basePoint(), k, negate(a))), rBytes);
}
