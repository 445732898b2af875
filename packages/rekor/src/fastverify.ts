// Batched ECDSA P-256 verification of signatures over DIGESTS (hashedrekord) for the log's
// signature verifier: OpenSSL's ECDSA_do_verify through the native addon where it is built, else
// core's portable ECDH route (ecdsa-ecdh.ts in @waxseal/core, which explains the technique and
// batches its modular inversions). This module only fixes the curve to P-256 for its callers.
import {
  ecdsaDigestJob,
  ecPointFromUncompressed,
  nativeEcdsa,
  parseEcdsaSignatureDer,
  verifyEcdsaDigestBatch,
  verifyEcdsaPackedEcdh,
  type EcdsaDigestJob,
} from '@waxseal/core';

/** A P-256 check: public point, bits2int(digest) (its leftmost 256 bits), r and s. */
export type P256Job = EcdsaDigestJob;

/** Strict DER ECDSA-Sig-Value as P-256 integers; undefined for anything else. */
export function parseEcdsaDer(sig: Uint8Array): { r: bigint; s: bigint } | undefined {
  const rs = parseEcdsaSignatureDer(sig, 32);
  const int = (b: Uint8Array) => BigInt(`0x0${Buffer.from(b).toString('hex')}`);
  return rs && { r: int(rs.r), s: int(rs.s) };
}

export function pointFromUncompressed(raw: Uint8Array): { qx: bigint; qy: bigint } {
  const q = ecPointFromUncompressed(256, raw);
  if (!q) throw new TypeError('expected an uncompressed P-256 point');
  return q;
}

/** Verifies many P-256 signatures over digests; result[i] is true iff job i verifies. */
export function verifyP256Batch(jobs: readonly P256Job[]): boolean[] {
  return verifyEcdsaDigestBatch(256, jobs);
}

/** Builds a job from raw inputs; undefined when the signature is not valid DER. */
export function p256Job(point: { qx: bigint; qy: bigint }, digest: Uint8Array, derSignature: Uint8Array): P256Job | undefined {
  return ecdsaDigestJob(256, point, digest, derSignature);
}

/**
 * Verifies `count` P-256 jobs packed as ecdsa-digest.ts lays them out (the native addon's
 * format) through the ECDH route; returns one byte per job (1 = valid).
 */
export function verifyPacked(buf: Uint8Array, count: number): Uint8Array {
  return verifyEcdsaPackedEcdh(256, buf, count);
}

/** Verifies packed P-256 jobs with OpenSSL through the native addon when built, else as above. */
export function verifyP256Packed(buf: Uint8Array, count: number): Uint8Array {
  const addon = nativeEcdsa();
  return addon ? addon.verify(256, buf, count) : verifyPacked(buf, count);
}
