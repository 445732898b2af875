// Verification failures: every one is a WaxsealError whose `check` names the failed check and
// whose code follows from the check's family.
import { WaxsealError, type ErrorCode } from '@waxseal/core';

/** The checks the verifier can report, with the error code each one carries. */
export const CHECKS = {
  'bundle.material': 'ERR_VERIFY_KEY',
  policy: 'ERR_INVALID_INPUT',
  'artifact.required': 'ERR_VERIFY_ARTIFACT',
  'artifact.digest': 'ERR_VERIFY_ARTIFACT',
  signature: 'ERR_VERIFY_SIGNATURE',
  'dsse.payload-type': 'ERR_VERIFY_DSSE',
  'dsse.statement': 'ERR_VERIFY_DSSE',
  'dsse.subject': 'ERR_VERIFY_ARTIFACT',
  'dsse.predicate-type': 'ERR_VERIFY_DSSE',
  'tlog.unsupported-kind': 'ERR_VERIFY_TLOG',
  'tlog.body': 'ERR_VERIFY_TLOG',
  'tlog.body-mismatch': 'ERR_VERIFY_TLOG',
  'tlog.set': 'ERR_VERIFY_TLOG',
  'tlog.integrated-time': 'ERR_VERIFY_TLOG',
  'tlog.missing-proof': 'ERR_VERIFY_TLOG',
  'tlog.checkpoint': 'ERR_VERIFY_TLOG',
  'tlog.inclusion-proof': 'ERR_VERIFY_TLOG',
  'tlog.key': 'ERR_VERIFY_TLOG',
  'timestamp.parse': 'ERR_VERIFY_TIMESTAMP',
  'timestamp.signature': 'ERR_VERIFY_TIMESTAMP',
  'timestamp.imprint': 'ERR_VERIFY_TIMESTAMP',
  'timestamp.chain': 'ERR_VERIFY_TIMESTAMP',
  'timestamp.authority': 'ERR_VERIFY_TIMESTAMP',
  'cert.parse': 'ERR_VERIFY_CERT_PROFILE',
  'cert.profile': 'ERR_VERIFY_CERT_PROFILE',
  'cert.chain': 'ERR_VERIFY_CERT_CHAIN',
  sct: 'ERR_VERIFY_SCT',
  'key.mismatch': 'ERR_VERIFY_KEY',
  'key.validity': 'ERR_VERIFY_KEY',
  'identity.san': 'ERR_VERIFY_IDENTITY',
  'identity.issuer': 'ERR_VERIFY_IDENTITY',
  'identity.extension': 'ERR_VERIFY_IDENTITY',
  'threshold.tlog': 'ERR_VERIFY_THRESHOLD',
  /** Observer timestamps: verified RFC 3161 times plus SET-backed integrated times. */
  'threshold.timestamp': 'ERR_VERIFY_THRESHOLD',
  'threshold.rfc3161-timestamp': 'ERR_VERIFY_THRESHOLD',
  'threshold.integrated-timestamp': 'ERR_VERIFY_THRESHOLD',
  'threshold.ctlog': 'ERR_VERIFY_THRESHOLD',
} as const satisfies Record<string, ErrorCode>;

export type CheckName = keyof typeof CHECKS;

export function verifyError(check: CheckName, message: string, cause?: unknown, detail?: Record<string, unknown>): WaxsealError {
  return new WaxsealError(CHECKS[check], `${check}: ${message}`, {
    check,
    ...(cause === undefined ? {} : { cause }),
    ...(detail ? { detail } : {}),
  });
}

export function fail(check: CheckName, message: string, cause?: unknown, detail?: Record<string, unknown>): never {
  throw verifyError(check, message, cause, detail);
}

/** Runs `fn`; any error it throws becomes a failure of `check` (WaxsealErrors keep their text). */
export function under<T>(check: CheckName, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WaxsealError && e.check !== undefined) throw e;
    fail(check, `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}
