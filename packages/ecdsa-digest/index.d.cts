export interface EcdsaDigestAddon {
  /**
   * Verifies `count` packed jobs (Qx Qy r s, each field-size big-endian, then a digest length byte
   * and 64 digest bytes) on the curve of `bits` bits. One byte per job: 1 when it verifies.
   * Never throws for bad jobs, only for bad arguments.
   */
  verify(bits: 256 | 384 | 521, jobs: Uint8Array, count: number): Uint8Array;
}
/** The addon, or undefined when it is not built or switched off. */
export declare const addon: EcdsaDigestAddon | undefined;
/** Why the addon is not in use (undefined when it is). */
export declare const unavailableReason: string | undefined;
