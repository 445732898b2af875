// One error type for the whole project. Every failure that an attacker, a user or a peer can
// cause is a WaxsealError with a stable code from the closed list below; servers map the code to
// an HTTP status, the CLI prints `<code>: <message>` and exits with a code-specific status.
// Programming mistakes (wrong argument types from our own code) stay plain TypeError.

/** Every stable error code, with the HTTP status a server answers and what it means. */
export const ERROR_CODES = {
  // generic input
  ERR_INVALID_INPUT: { status: 400, about: 'malformed or unacceptable input' },
  ERR_JSON_PARSE: { status: 400, about: 'body or file is not valid JSON' },
  ERR_DER_PARSE: { status: 400, about: 'malformed DER/ASN.1 structure' },
  ERR_PEM_PARSE: { status: 400, about: 'malformed PEM block' },
  ERR_BODY_TOO_LARGE: { status: 413, about: 'request body exceeds the size limit' },
  ERR_MEDIA_TYPE: { status: 415, about: 'unsupported Content-Type' },
  ERR_NOT_FOUND: { status: 404, about: 'no such resource' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, about: 'method not allowed on this path' },
  ERR_CONFLICT: { status: 409, about: 'resource already exists' },
  ERR_CONFIG: { status: 500, about: 'invalid configuration' },
  ERR_IO: { status: 500, about: 'file or network I/O failed' },
  ERR_INTERNAL: { status: 500, about: 'internal error' },
  ERR_UNAVAILABLE: { status: 503, about: 'a dependency is unavailable' },
  ERR_REGISTRY_AUTH: { status: 401, about: 'an OCI registry refused access: missing or wrong credentials, or no usable challenge' },

  // keys and algorithms
  ERR_KEY_UNSUPPORTED: { status: 400, about: 'unsupported key type or algorithm' },
  ERR_KEY_WEAK: { status: 400, about: 'key too weak' },
  ERR_HASH_UNSUPPORTED: { status: 400, about: 'unsupported hash algorithm' },
  ERR_HASH_WEAK: { status: 400, about: 'hash algorithm too weak (SHA-1)' },
  ERR_SIGNER: { status: 500, about: 'the signing backend failed' },

  // identity (OIDC tokens) and CA
  ERR_TOKEN_INVALID: { status: 401, about: 'identity token is malformed or its signature does not verify' },
  ERR_TOKEN_EXPIRED: { status: 401, about: 'identity token expired or not yet valid' },
  ERR_TOKEN_AUDIENCE: { status: 401, about: 'identity token audience does not include the client id' },
  ERR_TOKEN_ALGORITHM: { status: 401, about: 'identity token algorithm not allowed' },
  ERR_ISSUER_UNKNOWN: { status: 401, about: 'identity token issuer is not configured' },
  ERR_ISSUER_DISCOVERY: { status: 401, about: 'OIDC discovery or JWKS fetch failed for the issuer' },
  ERR_IDENTITY_CLAIMS: { status: 400, about: 'identity token lacks claims the issuer type needs' },
  ERR_PROOF_OF_POSSESSION: { status: 400, about: 'proof of possession does not verify' },
  ERR_CSR_INVALID: { status: 400, about: 'certificate signing request is invalid' },
  ERR_POLICY_DENIED: { status: 403, about: 'the signing policy does not allow this identity' },
  ERR_CHAIN_INVALID: { status: 500, about: 'a configured certificate chain is invalid' },

  // timestamp authority
  ERR_TSA_REQUEST: { status: 400, about: 'invalid timestamp request' },
  ERR_TSA_POLICY: { status: 400, about: 'unaccepted timestamp policy' },

  // transparency log
  ERR_LOG_ENTRY_INVALID: { status: 400, about: 'proposed log entry is invalid' },
  ERR_LOG_ENTRY_TYPE: { status: 400, about: 'unsupported log entry kind or version' },
  ERR_LOG_FROZEN: { status: 405, about: 'the log is frozen' },
  ERR_LOG_INCONSISTENT: { status: 500, about: 'log state is inconsistent' },

  // trust material and bundles
  ERR_BUNDLE_INVALID: { status: 400, about: 'bundle is malformed or violates its version rules' },
  ERR_TRUSTED_ROOT_INVALID: { status: 400, about: 'trusted root is malformed' },
  ERR_SIGNING_CONFIG_INVALID: { status: 400, about: 'signing config is malformed' },
  ERR_TUF: { status: 400, about: 'TUF metadata failed verification' },
  ERR_AUDIT_TAMPERED: { status: 500, about: 'audit log chain does not verify' },

  // verification: each names the check that failed
  ERR_VERIFY_SIGNATURE: { status: 400, about: 'the artifact signature does not verify' },
  ERR_VERIFY_ARTIFACT: { status: 400, about: 'the artifact does not match the signed digest or subject' },
  ERR_VERIFY_CERT_CHAIN: { status: 400, about: 'the certificate does not chain to a trusted CA at the signing time' },
  ERR_VERIFY_CERT_PROFILE: { status: 400, about: 'the certificate is not a valid code-signing certificate' },
  ERR_VERIFY_TIMESTAMP: { status: 400, about: 'an RFC 3161 timestamp does not verify' },
  ERR_VERIFY_TLOG: { status: 400, about: 'a transparency log entry does not verify' },
  ERR_VERIFY_SCT: { status: 400, about: 'signed certificate timestamps do not verify' },
  ERR_VERIFY_THRESHOLD: { status: 400, about: 'too few verified timestamps, log entries or SCTs' },
  ERR_VERIFY_IDENTITY: { status: 400, about: 'the signer identity does not match the policy' },
  ERR_VERIFY_KEY: { status: 400, about: 'the public key is not trusted at the signing time' },
  ERR_VERIFY_DSSE: { status: 400, about: 'the DSSE envelope or in-toto statement is invalid' },
} as const satisfies Record<string, { status: number; about: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface WaxsealErrorOptions {
  /** Name of the check that failed, for verification errors (e.g. "tlog.inclusion-proof"). */
  check?: string;
  cause?: unknown;
  /** Extra machine-readable detail safe to return to a client. */
  detail?: Record<string, unknown>;
}

export class WaxsealError extends Error {
  override readonly name = 'WaxsealError';
  readonly code: ErrorCode;
  readonly check: string | undefined;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WaxsealErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.check = options.check;
    this.detail = options.detail;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.check === undefined ? {} : { check: this.check }),
      ...(this.detail === undefined ? {} : { detail: this.detail }),
    };
  }
}

export function isWaxsealError(e: unknown, code?: ErrorCode): e is WaxsealError {
  return e instanceof WaxsealError && (code === undefined || e.code === code);
}

/** Throws a WaxsealError when `condition` is false. */
export function ensure(condition: unknown, code: ErrorCode, message: string, options?: WaxsealErrorOptions): asserts condition {
  if (!condition) throw new WaxsealError(code, message, options);
}

/** Runs `fn`, converting any non-Waxseal exception into a WaxsealError with `code`. */
export function wrapErrors<T>(code: ErrorCode, message: string, fn: () => T, options?: WaxsealErrorOptions): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new WaxsealError(code, `${message}: ${why}`, { ...options, cause: e });
  }
}
