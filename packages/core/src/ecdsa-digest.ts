// ECDSA verification over a digest (hashedrekord, digest-only bundles) through OpenSSL.
//
// node:crypto only verifies signatures over messages it hashes itself. native/ecdsa-digest is a
// small N-API addon that hands a batch of (point, r, s, digest) jobs to OpenSSL's own
// ECDSA_do_verify, using the OpenSSL inside the node binary; ~65 us per P-256 check here against
// ~140 us for the portable ECDH route (ecdsa-ecdh.ts) and ~2 ms for pure-JS arithmetic. It is an
// optional dependency: where it is not built (no compiler) or WAXSEAL_NATIVE_ECDSA=0, callers
// get `undefined` from nativeEcdsa() and use the ECDH route.
import native from '@waxseal/ecdsa-digest';

export type EcdsaCurveBits = 256 | 384 | 521;

/** Bytes per coordinate / scalar for each curve. */
export const FIELD_BYTES: Record<EcdsaCurveBits, number> = { 256: 32, 384: 48, 521: 66 };
/** The packed job reserves room for a digest of up to 64 bytes (SHA-512). */
export const MAX_DIGEST_BYTES = 64;

/** Packed job: Qx Qy r s (field-size, big-endian), digest length (1 byte), digest (64 bytes). */
export function ecdsaJobSize(bits: EcdsaCurveBits): number {
  return 4 * FIELD_BYTES[bits] + 1 + MAX_DIGEST_BYTES;
}

export type { EcdsaDigestAddon } from '@waxseal/ecdsa-digest';

/** The addon, or undefined when it is not built or switched off. */
export function nativeEcdsa(): typeof native.addon {
  return native.addon;
}

/** Why the addon is not in use (undefined when it is). */
export function nativeEcdsaUnavailableReason(): string | undefined {
  return native.unavailableReason;
}

/**
 * Strict DER ECDSA-Sig-Value { r INTEGER, s INTEGER }: definite minimal lengths, minimal positive
 * integers of at most `maxIntBytes` significant bytes, nothing trailing (Go's ecdsa.VerifyASN1
 * accepts exactly these). Returns the integers' bytes without a sign byte.
 */
export function parseEcdsaSignatureDer(sig: Uint8Array, maxIntBytes: number): { r: Uint8Array; s: Uint8Array } | undefined {
  if (sig.length < 8 || sig[0] !== 0x30) return undefined;
  let o = 1;
  let len = sig[o++]!;
  if (len === 0x81) {
    len = sig[o++]!;
    if (len < 0x80) return undefined; // long form where the short form fits
  } else if (len > 0x7f) return undefined;
  if (o + len !== sig.length) return undefined;
  const ints: Uint8Array[] = [];
  for (let k = 0; k < 2; k++) {
    if (sig[o] !== 0x02) return undefined;
    const n = sig[o + 1]!;
    o += 2;
    if (n === 0 || n > 0x7f || o + n > sig.length) return undefined;
    let v = sig.subarray(o, o + n);
    if (v[0]! & 0x80) return undefined; // negative
    if (n > 1 && v[0] === 0 && !(v[1]! & 0x80)) return undefined; // non-minimal
    if (v[0] === 0 && n > 1) v = v.subarray(1);
    if (v.length > maxIntBytes) return undefined;
    ints.push(v);
    o += n;
  }
  if (o !== sig.length) return undefined;
  return { r: ints[0]!, s: ints[1]! };
}

/**
 * Writes one job at `out[at]`. `point` is the uncompressed public point (0x04 || X || Y).
 * False when the signature is not strict DER or a size is wrong (the check then fails).
 */
export function packEcdsaJob(
  bits: EcdsaCurveBits,
  point: Uint8Array,
  digest: Uint8Array,
  derSignature: Uint8Array,
  out: Uint8Array,
  at: number,
): boolean {
  const f = FIELD_BYTES[bits];
  if (point.length !== 1 + 2 * f || point[0] !== 4) return false;
  if (digest.length === 0 || digest.length > MAX_DIGEST_BYTES) return false;
  const rs = parseEcdsaSignatureDer(derSignature, f);
  if (!rs) return false;
  out.fill(0, at, at + ecdsaJobSize(bits));
  out.set(point.subarray(1), at);
  out.set(rs.r, at + 3 * f - rs.r.length);
  out.set(rs.s, at + 4 * f - rs.s.length);
  out[at + 4 * f] = digest.length;
  out.set(digest, at + 4 * f + 1);
  return true;
}

/** Verifies one signature over a digest with the addon; undefined when the addon is absent. */
export function verifyEcdsaDigestNative(
  bits: EcdsaCurveBits,
  point: Uint8Array,
  digest: Uint8Array,
  derSignature: Uint8Array,
): boolean | undefined {
  const addon = nativeEcdsa();
  if (!addon) return undefined;
  const job = new Uint8Array(ecdsaJobSize(bits));
  if (!packEcdsaJob(bits, point, digest, derSignature, job, 0)) return false;
  return addon.verify(bits, job, 1)[0] === 1;
}
