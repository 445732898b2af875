// ECDSA P-256 verification of a signature over a DIGEST (hashedrekord) without the native
// addon (src/core/ecdsa-digest.ts is ~2x faster and preferred where it is built).
//
// node:crypto only verifies signatures over messages it hashes itself, and the pure-JS path
// (@noble/curves) manages ~500 verifies/s. This module performs the standard ECDSA check
//     x(u1*G + u2*Q) mod n == r,   u1 = e/s, u2 = r/s
// rewritten as  x(u2 * (t*G + Q)) == r  with  t = u1/u2 = e/r,  using OpenSSL through the
// ECDH API for both scalar multiplications:
//   t*G         ECDH.setPrivateKey(t).getPublicKey()   (fixed base, full coordinates)
//   t*G + Q     one affine point addition in BigInt
//   x(u2 * P)   ECDH.setPrivateKey(u2).computeSecret(P) (variable base, x only: all we need)
// The modular inversions (r*s mod n and the addition's slope mod p) are batched across many
// signatures with Montgomery's trick, so each signature costs two native scalar
// multiplications and ~15 BigInt multiplications. The result is exactly ECDSA verification
// (same accept set as OpenSSL/Go: both low and high s accepted, r and s in [1, n-1]).
import { createECDH, type ECDH } from 'node:crypto';
import { ecdsaJobSize, nativeEcdsa, parseEcdsaSignatureDer } from '@waxseal/core';

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export interface P256Job {
  /** Public key point (validated on-curve by whoever parsed the key). */
  qx: bigint;
  qy: bigint;
  /** bits2int(digest): the leftmost 256 bits of the digest. */
  e: bigint;
  r: bigint;
  s: bigint;
}

function modInverse(a: bigint, m: bigint): bigint {
  let r0 = a % m;
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

/** Inverses of all (non-zero) values mod m with one inversion (Montgomery's trick). */
function batchInverse(values: bigint[], m: bigint): bigint[] {
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

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function bytesToBigInt(b: Uint8Array): bigint {
  let s = '0x';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return b.length === 0 ? 0n : BigInt(s);
}

function bigIntTo32(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

/** leftmost 256 bits of a digest as an integer (SEC 1 bits2int for n of 256 bits). */
export function digestToScalar(digest: Uint8Array): bigint {
  return bytesToBigInt(digest.length > 32 ? digest.subarray(0, 32) : digest);
}

/** Strict DER ECDSA-Sig-Value as P-256 integers; undefined for anything else. */
export function parseEcdsaDer(sig: Uint8Array): { r: bigint; s: bigint } | undefined {
  const rs = parseEcdsaSignatureDer(sig, 32);
  return rs && { r: bytesToBigInt(rs.r), s: bytesToBigInt(rs.s) };
}

export function pointFromUncompressed(raw: Uint8Array): { qx: bigint; qy: bigint } {
  if (raw.length !== 65 || raw[0] !== 4) throw new TypeError('expected an uncompressed P-256 point');
  return { qx: bytesToBigInt(raw.subarray(1, 33)), qy: bytesToBigInt(raw.subarray(33, 65)) };
}

let sharedEcdh: ECDH | undefined;

/** Verifies many P-256 signatures over digests; result[i] is true iff job i verifies. */
export function verifyP256Batch(jobs: readonly P256Job[]): boolean[] {
  const ecdh = (sharedEcdh ??= createECDH('prime256v1'));
  const ok: boolean[] = new Array(jobs.length).fill(false);
  const live: number[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i]!;
    if (j.r > 0n && j.r < N && j.s > 0n && j.s < N) live.push(i);
  }
  if (live.length === 0) return ok;
  const invRS = batchInverse(
    live.map((i) => (jobs[i]!.r * jobs[i]!.s) % N),
    N,
  );
  // Per job: t*G (or nothing when t == 0) and u2.
  const ax: (bigint | undefined)[] = [];
  const ay: bigint[] = [];
  const u2s: bigint[] = [];
  live.forEach((i, k) => {
    const j = jobs[i]!;
    const rInv = (invRS[k]! * j.s) % N;
    const sInv = (invRS[k]! * j.r) % N;
    const t = ((j.e % N) * rInv) % N;
    u2s.push((j.r * sInv) % N);
    if (t === 0n) {
      ax.push(undefined);
      ay.push(0n);
      return;
    }
    ecdh.setPrivateKey(bigIntTo32(t));
    const pub = ecdh.getPublicKey();
    ax.push(bytesToBigInt(pub.subarray(1, 33)));
    ay.push(bytesToBigInt(pub.subarray(33, 65)));
  });
  // Slopes: (qy - ay) / (qx - ax) for additions, 3x^2+a / 2y for doublings.
  const denominators: bigint[] = [];
  const kind: ('add' | 'double' | 'infinity' | 'q')[] = [];
  live.forEach((i, k) => {
    const j = jobs[i]!;
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
  live.forEach((i, k) => {
    const j = jobs[i]!;
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
    ecdh.setPrivateKey(bigIntTo32(u2s[k]!));
    const point = Buffer.concat([Buffer.of(4), bigIntTo32(px), bigIntTo32(py)]);
    let x: bigint;
    try {
      x = bytesToBigInt(ecdh.computeSecret(point));
    } catch {
      return;
    }
    ok[i] = x % N === j.r;
  });
  return ok;
}

/** Builds a job from raw inputs; undefined when the signature is not valid DER. */
export function p256Job(point: { qx: bigint; qy: bigint }, digest: Uint8Array, derSignature: Uint8Array): P256Job | undefined {
  const rs = parseEcdsaDer(derSignature);
  if (!rs) return undefined;
  return { qx: point.qx, qy: point.qy, e: digestToScalar(digest), r: rs.r, s: rs.s };
}

const JOB_SIZE = ecdsaJobSize(256);

/**
 * Verifies `count` P-256 jobs packed as ecdsa-digest.ts lays them out (the native addon's
 * format); returns one byte per job (1 = valid).
 */
export function verifyPacked(buf: Uint8Array, count: number): Uint8Array {
  const jobs: P256Job[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * JOB_SIZE;
    const digestLength = buf[o + 128]!;
    jobs.push({
      qx: bytesToBigInt(buf.subarray(o, o + 32)),
      qy: bytesToBigInt(buf.subarray(o + 32, o + 64)),
      r: bytesToBigInt(buf.subarray(o + 64, o + 96)),
      s: bytesToBigInt(buf.subarray(o + 96, o + 128)),
      e: digestToScalar(buf.subarray(o + 129, o + 129 + digestLength)),
    });
  }
  return Uint8Array.from(verifyP256Batch(jobs), (v) => (v ? 1 : 0));
}

/** Verifies packed P-256 jobs with OpenSSL through the native addon when built, else as above. */
export function verifyP256Packed(buf: Uint8Array, count: number): Uint8Array {
  const addon = nativeEcdsa();
  return addon ? addon.verify(256, buf, count) : verifyPacked(buf, count);
}
