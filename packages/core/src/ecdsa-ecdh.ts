// ECDSA (P-256, P-384, P-521) verification of a signature over a DIGEST with node:crypto alone,
// for where the native addon (ecdsa-digest.ts, ~2x faster) is not built or is switched off.
//
// node:crypto only verifies signatures over messages it hashes itself, and pure-JS curve
// arithmetic is slower than this: ~17x on P-256 (OpenSSL's dedicated code), ~2-3x on P-384 and
// P-521 (OpenSSL's generic constant-time ladders). The standard ECDSA check
//     x(u1*G + u2*Q) mod n == r,   u1 = e/s, u2 = r/s
// is rewritten as  x(u2 * (t*G + Q)) mod n == r  with  t = u1/u2 = e/r,  and both scalar
// multiplications go to OpenSSL through the ECDH API:
//   t*G         ECDH.setPrivateKey(t).getPublicKey()   (fixed base, full coordinates)
//   t*G + Q     one affine point addition in BigInt
//   x(u2 * P)   ECDH.setPrivateKey(u2).computeSecret(P) (variable base, x only: all we need)
// The technique needs nothing curve-specific beyond the constants below (all three NIST curves
// have a = -3 and cofactor 1). The modular inversions (r*s mod n and the addition's slope mod p)
// are batched across signatures with Montgomery's trick, so each signature costs two native
// scalar multiplications and a few dozen BigInt multiplications. The accept set is exactly
// ECDSA's, as OpenSSL and Go have it: low and high s both accepted, r and s in [1, n-1], Q on
// the curve.
import { createECDH, type ECDH } from 'node:crypto';
import { ecdsaJobSize, FIELD_BYTES, MAX_DIGEST_BYTES, parseEcdsaSignatureDer, type EcdsaCurveBits } from './ecdsa-digest.ts';

interface Curve {
  /** OpenSSL's name, for createECDH. */
  openssl: string;
  /** Field prime, group order (both prime; cofactor 1) and the curve's b (a is -3). */
  p: bigint;
  n: bigint;
  b: bigint;
}

const CURVES: Record<EcdsaCurveBits, Curve> = {
  256: {
    openssl: 'prime256v1',
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  384: {
    openssl: 'secp384r1',
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  521: {
    openssl: 'secp521r1',
    p: (1n << 521n) - 1n,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
};

/** The curve constants, for tests to compare against an independent source. */
export function ecdsaCurveConstants(bits: EcdsaCurveBits): { p: bigint; n: bigint; b: bigint } {
  const { p, n, b } = CURVES[bits];
  return { p, n, b };
}

/** One signature check: public point Q, e = bits2int(digest), and the signature (r, s). */
export interface EcdsaDigestJob {
  qx: bigint;
  qy: bigint;
  e: bigint;
  r: bigint;
  s: bigint;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Big-endian unsigned integer. */
export function bytesToBigInt(b: Uint8Array): bigint {
  let s = '0x';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return b.length === 0 ? 0n : BigInt(s);
}

function toFixed(v: bigint, size: number): Buffer {
  return Buffer.from(v.toString(16).padStart(2 * size, '0'), 'hex');
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function modInverse(a: bigint, m: bigint): bigint {
  let r0 = mod(a, m);
  let r1 = m;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    let t = r0 - q * r1;
    r0 = r1;
    r1 = t;
    t = s0 - q * s1;
    s0 = s1;
    s1 = t;
  }
  if (r0 !== 1n) throw new RangeError('not invertible');
  return s0 < 0n ? s0 + m : s0;
}

/** Inverses of all (non-zero) values mod a prime m with one inversion (Montgomery's trick). */
function batchInverse(values: readonly bigint[], m: bigint): bigint[] {
  const n = values.length;
  const prefix: bigint[] = new Array(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) {
    prefix[i] = acc;
    acc = (acc * values[i]!) % m;
  }
  let inv = modInverse(acc, m);
  const out: bigint[] = new Array(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = (inv * prefix[i]!) % m;
    inv = (inv * values[i]!) % m;
  }
  return out;
}

/**
 * SEC 1 bits2int: the digest as a big-endian integer, keeping only its leftmost `bits` bits when
 * it is longer (SHA-384/512 on P-256 keep the first 32 bytes; nothing up to SHA-512 is cut on
 * P-521, whose order has 521 bits). The result may exceed n; the check reduces it.
 */
export function bits2int(bits: EcdsaCurveBits, digest: Uint8Array): bigint {
  const excess = digest.length * 8 - bits;
  const e = bytesToBigInt(digest);
  return excess > 0 ? e >> BigInt(excess) : e;
}

/** The coordinates of an uncompressed point (0x04 || X || Y); undefined for another size or form. */
export function ecPointFromUncompressed(bits: EcdsaCurveBits, raw: Uint8Array): { qx: bigint; qy: bigint } | undefined {
  const f = FIELD_BYTES[bits];
  if (raw.length !== 1 + 2 * f || raw[0] !== 4) return undefined;
  return { qx: bytesToBigInt(raw.subarray(1, 1 + f)), qy: bytesToBigInt(raw.subarray(1 + f)) };
}

/** Builds a job; undefined when the signature is not strict DER with integers of the curve's size. */
export function ecdsaDigestJob(
  bits: EcdsaCurveBits,
  q: { qx: bigint; qy: bigint },
  digest: Uint8Array,
  derSignature: Uint8Array,
): EcdsaDigestJob | undefined {
  const rs = parseEcdsaSignatureDer(derSignature, FIELD_BYTES[bits]);
  if (!rs) return undefined;
  return { qx: q.qx, qy: q.qy, e: bits2int(bits, digest), r: bytesToBigInt(rs.r), s: bytesToBigInt(rs.s) };
}

function onCurve(c: Curve, x: bigint, y: bigint): boolean {
  if (x < 0n || x >= c.p || y < 0n || y >= c.p) return false;
  return (y * y - (x * x * x - 3n * x + c.b)) % c.p === 0n;
}

const ecdhByCurve = new Map<EcdsaCurveBits, ECDH>();

function ecdhFor(bits: EcdsaCurveBits): ECDH {
  let e = ecdhByCurve.get(bits);
  if (!e) ecdhByCurve.set(bits, (e = createECDH(CURVES[bits].openssl)));
  return e;
}

/** Verifies many signatures over digests on one curve; result[i] is true iff job i verifies. */
export function verifyEcdsaDigestBatch(bits: EcdsaCurveBits, jobs: readonly EcdsaDigestJob[]): boolean[] {
  const c = CURVES[bits];
  const { p: P, n: N } = c;
  const f = FIELD_BYTES[bits];
  const ecdh = ecdhFor(bits);
  const ok: boolean[] = new Array(jobs.length).fill(false);
  // Out-of-range scalars and points off the curve fail before any arithmetic.
  const live: EcdsaDigestJob[] = [];
  const liveIndex: number[] = [];
  jobs.forEach((j, i) => {
    if (j.r > 0n && j.r < N && j.s > 0n && j.s < N && onCurve(c, j.qx, j.qy)) {
      live.push(j);
      liveIndex.push(i);
    }
  });
  if (live.length === 0) return ok;
  const invRS = batchInverse(
    live.map((j) => (j.r * j.s) % N),
    N,
  );
  // Per job: t*G (undefined when t == 0) and u2 (never 0: r and s are in [1, n-1]).
  const ax: (bigint | undefined)[] = [];
  const ay: bigint[] = [];
  const u2s: bigint[] = [];
  live.forEach((j, k) => {
    const rInv = (invRS[k]! * j.s) % N;
    const sInv = (invRS[k]! * j.r) % N;
    const t = ((j.e % N) * rInv) % N;
    u2s.push((j.r * sInv) % N);
    if (t === 0n) {
      ax.push(undefined);
      ay.push(0n);
      return;
    }
    ecdh.setPrivateKey(toFixed(t, f));
    const pub = ecdh.getPublicKey();
    ax.push(bytesToBigInt(pub.subarray(1, 1 + f)));
    ay.push(bytesToBigInt(pub.subarray(1 + f)));
  });
  // Slopes: (qy - ay) / (qx - ax) for additions, (3x^2 + a) / 2y for doublings.
  const denominators: bigint[] = [];
  const kind: ('add' | 'double' | 'infinity' | 'q')[] = [];
  live.forEach((j, k) => {
    const x = ax[k];
    if (x === undefined) {
      kind.push('q');
      denominators.push(1n);
    } else if (x !== j.qx) {
      kind.push('add');
      denominators.push(mod(j.qx - x, P));
    } else if (ay[k] === j.qy && j.qy !== 0n) {
      kind.push('double');
      denominators.push(mod(2n * j.qy, P));
    } else {
      kind.push('infinity');
      denominators.push(1n);
    }
  });
  const invDen = batchInverse(denominators, P);
  live.forEach((j, k) => {
    let px: bigint;
    let py: bigint;
    switch (kind[k]) {
      case 'infinity':
        return; // t*G = -Q: u1*G + u2*Q is the point at infinity, never valid
      case 'q':
        px = j.qx;
        py = j.qy;
        break;
      default: {
        const x1 = ax[k]!;
        const y1 = ay[k]!;
        const l = kind[k] === 'add' ? mod((j.qy - y1) * invDen[k]!, P) : mod((3n * x1 * x1 - 3n) * invDen[k]!, P);
        px = mod(l * l - x1 - (kind[k] === 'add' ? j.qx : x1), P);
        py = mod(l * (x1 - px) - y1, P);
      }
    }
    ecdh.setPrivateKey(toFixed(u2s[k]!, f));
    let x: bigint;
    try {
      x = bytesToBigInt(ecdh.computeSecret(Buffer.concat([Buffer.of(4), toFixed(px, f), toFixed(py, f)])));
    } catch {
      return;
    }
    ok[liveIndex[k]!] = x % N === j.r;
  });
  return ok;
}

/**
 * Verifies one DER signature over a digest for the uncompressed point `point`. Digests of 1 to 64
 * bytes, as the native addon takes them, so that both paths accept the same inputs.
 */
export function verifyEcdsaDigestEcdh(bits: EcdsaCurveBits, point: Uint8Array, digest: Uint8Array, derSignature: Uint8Array): boolean {
  if (digest.length === 0 || digest.length > MAX_DIGEST_BYTES) return false;
  const q = ecPointFromUncompressed(bits, point);
  const job = q && ecdsaDigestJob(bits, q, digest, derSignature);
  return job !== undefined && verifyEcdsaDigestBatch(bits, [job])[0]!;
}

/**
 * Verifies `count` jobs packed as ecdsa-digest.ts lays them out (the native addon's format);
 * returns one byte per job (1 = valid), like the addon.
 */
export function verifyEcdsaPackedEcdh(bits: EcdsaCurveBits, buf: Uint8Array, count: number): Uint8Array {
  const f = FIELD_BYTES[bits];
  const size = ecdsaJobSize(bits);
  if (!Number.isSafeInteger(count) || count < 0 || buf.length < count * size) throw new TypeError('jobs is shorter than count jobs');
  const jobs: EcdsaDigestJob[] = [];
  const where: number[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * size;
    const digestLength = buf[o + 4 * f]!;
    if (digestLength === 0 || digestLength > MAX_DIGEST_BYTES) continue;
    where.push(i);
    jobs.push({
      qx: bytesToBigInt(buf.subarray(o, o + f)),
      qy: bytesToBigInt(buf.subarray(o + f, o + 2 * f)),
      r: bytesToBigInt(buf.subarray(o + 2 * f, o + 3 * f)),
      s: bytesToBigInt(buf.subarray(o + 3 * f, o + 4 * f)),
      e: bits2int(bits, buf.subarray(o + 4 * f + 1, o + 4 * f + 1 + digestLength)),
    });
  }
  const out = new Uint8Array(count);
  verifyEcdsaDigestBatch(bits, jobs).forEach((v, k) => {
    if (v) out[where[k]!] = 1;
  });
  return out;
}
