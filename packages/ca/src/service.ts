// The code-signing CA as a Waxseal Service, speaking Fulcio's API v2 over HTTP/JSON:
//   POST /api/v2/signingCert     public key + proof of possession, or a CSR, with an OIDC token
//   GET  /api/v2/trustBundle     the CA chain
//   GET  /api/v2/configuration   the configured issuers
//   GET  /api/v1/rootCert        the CA chain as PEM (legacy)
//   GET  /healthz
// Errors use the grpc-gateway shape {"code": <grpc code>, "message": "...", "details": []}.
// Every issuance and every refusal goes to the audit hook; the authorize hook decides who may sign.
import { readFileSync } from 'node:fs';
import {
  WaxsealError,
  sha256,
  defaultHash,
  toHex,
  type ErrorCode,
  type HashName,
  type KeyKind,
  type PublicKeyInfo,
  type Certificate,
  type FulcioExtensionName,
} from '@waxseal/core';
import type { Signer } from '@waxseal/keys';
import {
  json,
  serveServices,
  type ErrorFormatter,
  type Request,
  type Response,
  type Router,
  type RunningServer,
  type Service,
} from '@waxseal/server';
import { buildPrincipal, configurationView, parseIssuerConfig, type IssuerConfig, type OidcIssuer, type Principal } from './issuers.ts';
import { OidcVerifier, type FetchLike, type OidcVerifierOptions, type VerifiedToken } from './oidc.ts';
import {
  allowedAlgorithmSet,
  checkAlgorithmAllowed,
  checkCsr,
  checkKeyStrength,
  decodeProtoBytes,
  keyFingerprint,
  parsePublicKeyContent,
  verifyProofOfPossession,
} from './keycheck.ts';
import { LeafIssuer } from './certificate.ts';
import { caChainFromCertificates, type CaChain } from './chain.ts';

/** Fulcio's request size limit. */
export const MAX_SIGNING_REQUEST_BYTES = 4 << 20;

/** What the authorize hook sees about a request that passed every protocol check. */
export interface SigningRequestContext {
  /** The configured issuer; `issuerUrl` is the token's `iss` (also for meta-issuers). */
  readonly issuer: OidcIssuer;
  /** All verified token claims. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The identity the certificate will carry. */
  readonly principal: Principal;
  /** Every Fulcio extension value the certificate will carry, by name (issuer, tokenSubject, CI values). */
  readonly extensions: Readonly<Partial<Record<FulcioExtensionName, string>>>;
  readonly publicKey: {
    /** DER SubjectPublicKeyInfo. */
    readonly spki: Uint8Array;
    readonly kind: KeyKind;
    readonly rsaBits?: number;
    /** protobuf-specs PublicKeyDetails name, e.g. PKIX_ECDSA_P256_SHA_256. */
    readonly algorithm: string;
    /** SHA-256 of the SPKI, hex. */
    readonly fingerprint: string;
  };
  /** Which request form proved possession of the key. */
  readonly form: 'publicKey' | 'csr';
  readonly remoteAddress: string | undefined;
  readonly userAgent: string | undefined;
}

/** One audit record: every issuance and every refusal. Fields are present when they were known. */
export interface CaAuditEvent {
  readonly time: string;
  readonly result: 'issued' | 'refused';
  readonly errorCode?: ErrorCode;
  readonly message?: string;
  /** The token's `iss`. */
  readonly tokenIssuer?: string;
  /** The certificate's issuer extension value (1.8); differs from tokenIssuer with IssuerClaim. */
  readonly issuer?: string;
  /** The token's `sub`. */
  readonly subject?: string;
  readonly san?: Principal['san'];
  readonly keyFingerprint?: string;
  readonly keyAlgorithm?: string;
  readonly form?: 'publicKey' | 'csr';
  /** Certificate serial, hex. */
  readonly serial?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  /** SHA-256 of the issued certificate's DER, hex. */
  readonly certificateSha256?: string;
  /** The CA key that signed (a URI, never secret material). */
  readonly caKeyRef: string;
  readonly remoteAddress?: string;
}

export interface CaServiceOptions {
  signer: Signer;
  /** Issuing CA first .. root last. */
  chain: readonly Certificate[];
  issuers: IssuerConfig;
  now?: () => Date;
  /** Injected HTTP client for OIDC discovery and JWKS. */
  fetch?: FetchLike;
  /** Refuses a request by throwing a WaxsealError (normally ERR_POLICY_DENIED). */
  authorize?: (request: SigningRequestContext) => Promise<void>;
  /** Records issuances and refusals; if recording an issuance fails the certificate is not released. */
  audit?: (event: CaAuditEvent) => Promise<void>;
  /** Allowed client key/hash pairs (protobuf names or Fulcio flag names); Fulcio's default list otherwise. */
  clientSigningAlgorithms?: readonly string[];
  /** Fine tuning of token verification (clock skew, JWKS refresh cooldown, cache sizes). */
  oidc?: Omit<OidcVerifierOptions, 'issuers' | 'fetch' | 'now'>;
  /** Called for unexpected errors (defaults to console.error). */
  onInternalError?: (e: unknown) => void;
}

// HTTP status -> gRPC status code, as grpc-gateway maps them the other way round.
const GRPC_CODE_BY_STATUS: Record<number, number> = {
  400: 3, // InvalidArgument
  401: 16, // Unauthenticated
  403: 7, // PermissionDenied
  404: 5, // NotFound
  405: 12, // Unimplemented
  409: 6, // AlreadyExists
  413: 8, // ResourceExhausted
  415: 3, // InvalidArgument
  500: 13, // Internal
  503: 14, // Unavailable
};

/** Fulcio's grpc-gateway error body: {"code": <grpc code>, "message": "...", "details": []}. */
export const fulcioErrorFormatter: ErrorFormatter = (err) =>
  json(err.status, { code: GRPC_CODE_BY_STATUS[err.status] ?? 2, message: err.message, details: [] });

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// protobuf JSON accepts both the lowerCamelCase and the original snake_case field names.
function field(o: Json, camel: string, snake: string): unknown {
  return o[camel] !== undefined ? o[camel] : o[snake];
}

function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new WaxsealError('ERR_INVALID_INPUT', `${what} must be a string`);
  return v;
}

function bearerToken(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

export class CaService implements Service {
  readonly name = 'ca';
  readonly chain: CaChain;
  readonly issuers: IssuerConfig;
  readonly #signer: Signer;
  readonly #leaves: LeafIssuer;
  readonly #oidc: OidcVerifier;
  readonly #now: () => Date;
  readonly #authorize: CaServiceOptions['authorize'];
  readonly #audit: CaServiceOptions['audit'];
  readonly #allowed: ReadonlySet<string>;
  readonly #onInternalError: (e: unknown) => void;
  readonly #principals = new WeakMap<VerifiedToken, Principal>();
  /** Whether anyone reads the per-request record (audit or policy hooks). */
  readonly #recording: boolean;
  // Constant parts of responses, built once.
  readonly #chainJsonTail: string;
  readonly #trustBundle: string;
  readonly #configuration: string;
  readonly #rootCertPem: string;

  private constructor(opts: CaServiceOptions, chain: CaChain) {
    this.chain = chain;
    this.issuers = opts.issuers;
    this.#signer = opts.signer;
    this.#leaves = new LeafIssuer(opts.signer, chain.certificates[0]!);
    this.#now = opts.now ?? (() => new Date());
    const now = this.#now;
    this.#oidc = new OidcVerifier({
      ...opts.oidc,
      issuers: opts.issuers,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      now: () => now().getTime(),
    });
    this.#authorize = opts.authorize;
    this.#audit = opts.audit;
    this.#recording = opts.audit !== undefined || opts.authorize !== undefined;
    this.#allowed = allowedAlgorithmSet(opts.clientSigningAlgorithms);
    this.#onInternalError = opts.onInternalError ?? ((e) => console.error('ca: internal error:', e));
    this.#chainJsonTail = chain.pems.map((p) => JSON.stringify(p)).join(',');
    this.#trustBundle = JSON.stringify({ chains: [{ certificates: chain.pems }] });
    this.#configuration = JSON.stringify(configurationView(opts.issuers));
    this.#rootCertPem = chain.pems.join('');
  }

  /** Validates the chain for the signer (ERR_CHAIN_INVALID) and the options (ERR_CONFIG). */
  static async create(opts: CaServiceOptions): Promise<CaService> {
    const now = (opts.now ?? (() => new Date()))();
    const chain = caChainFromCertificates(opts.signer, opts.chain, now);
    return new CaService(opts, chain);
  }

  mount(router: Router, prefix = ''): void {
    const p = prefix.replace(/\/$/, '');
    const opts = { errorFormatter: fulcioErrorFormatter };
    router.post(`${p}/api/v2/signingCert`, (req) => this.#signingCert(req), opts);
    router.get(
      `${p}/api/v2/trustBundle`,
      () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: this.#trustBundle }),
      opts,
    );
    router.get(
      `${p}/api/v2/configuration`,
      () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: this.#configuration }),
      opts,
    );
    router.get(
      `${p}/api/v1/rootCert`,
      () => ({ status: 200, headers: { 'content-type': 'application/pem-certificate-chain' }, body: this.#rootCertPem }),
      opts,
    );
    router.get(`${p}/healthz`, () => json(200, { status: 'SERVING' }), opts);
  }

  async close(): Promise<void> {
    this.#oidc.clearCaches();
  }

  /** Issues a certificate for an already-decoded request body (the HTTP route's core; also for tests and embedding). */
  async issue(
    body: unknown,
    meta: { authorization?: string; remoteAddress?: string; userAgent?: string } = {},
  ): Promise<{ certificates: string[] }> {
    const record: { -readonly [K in keyof CaAuditEvent]?: CaAuditEvent[K] } = {};
    if (meta.remoteAddress) record.remoteAddress = meta.remoteAddress;
    try {
      const pem = await this.#issue(body, meta, record);
      return { certificates: [pem, ...this.chain.pems] };
    } catch (e) {
      await this.#refused(e, record);
      throw e;
    }
  }

  async #signingCert(req: Request): Promise<Response> {
    const record: { -readonly [K in keyof CaAuditEvent]?: CaAuditEvent[K] } = {};
    const remote = req.raw.socket.remoteAddress;
    if (remote) record.remoteAddress = remote;
    try {
      const mt = req.mediaType;
      if (mt !== '' && mt !== 'application/json' && !mt.endsWith('+json')) {
        throw new WaxsealError('ERR_MEDIA_TYPE', `Content-Type ${mt} is not supported; send application/json`);
      }
      const body = await req.json(MAX_SIGNING_REQUEST_BYTES);
      const auth = bearerToken(req);
      const ua = req.headers['user-agent'];
      const pem = await this.#issue(
        body,
        { ...(auth ? { authorization: auth } : {}), ...(remote ? { remoteAddress: remote } : {}), ...(ua ? { userAgent: ua } : {}) },
        record,
      );
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: `{"signedCertificateDetachedSct":{"chain":{"certificates":[${JSON.stringify(pem)},${this.#chainJsonTail}]}}}`,
      };
    } catch (e) {
      await this.#refused(e, record);
      if (!(e instanceof WaxsealError)) this.#onInternalError(e);
      throw e instanceof WaxsealError ? e : new WaxsealError('ERR_INTERNAL', 'internal error');
    }
  }

  async #issue(
    body: unknown,
    meta: { authorization?: string; remoteAddress?: string; userAgent?: string },
    record: { -readonly [K in keyof CaAuditEvent]?: CaAuditEvent[K] },
  ): Promise<string> {
    if (!isObject(body)) throw new WaxsealError('ERR_INVALID_INPUT', 'the request body must be a JSON object');
    const credentials = field(body, 'credentials', 'credentials');
    if (credentials !== undefined && credentials !== null && !isObject(credentials))
      throw new WaxsealError('ERR_INVALID_INPUT', 'credentials must be an object');
    // The body's token wins over the Authorization header, as in Fulcio.
    const token =
      (isObject(credentials)
        ? optionalString(field(credentials, 'oidcIdentityToken', 'oidc_identity_token'), 'credentials.oidcIdentityToken')
        : undefined) ?? meta.authorization;
    if (!token)
      throw new WaxsealError(
        'ERR_TOKEN_INVALID',
        'no OIDC identity token: send credentials.oidcIdentityToken or an Authorization: Bearer header',
      );

    const verified = await this.#oidc.verify(token);
    record.tokenIssuer = verified.issuer.issuerUrl;
    if (typeof verified.claims.sub === 'string') record.subject = verified.claims.sub;
    let principal = this.#principals.get(verified);
    if (!principal) {
      principal = buildPrincipal(this.issuers, verified.issuer, verified.claims);
      this.#principals.set(verified, principal);
    }
    record.issuer = principal.issuer;
    record.san = principal.san;

    const csrField = field(body, 'certificateSigningRequest', 'certificate_signing_request');
    const pkr = field(body, 'publicKeyRequest', 'public_key_request');
    const hasCsr = csrField !== undefined && csrField !== null && csrField !== '';
    const hasPkr = pkr !== undefined && pkr !== null;
    if (hasCsr && hasPkr)
      throw new WaxsealError('ERR_INVALID_INPUT', 'send either publicKeyRequest or certificateSigningRequest, not both');
    let key: PublicKeyInfo;
    let hash: HashName | null;
    let form: 'publicKey' | 'csr';
    if (hasCsr) {
      form = 'csr';
      record.form = form;
      ({ key, hash } = checkCsr(csrField));
      if (this.#recording) record.keyFingerprint = keyFingerprint(key.spki);
    } else {
      form = 'publicKey';
      record.form = form;
      if (!hasPkr) throw new WaxsealError('ERR_INVALID_INPUT', 'the request has neither publicKeyRequest nor certificateSigningRequest');
      if (!isObject(pkr)) throw new WaxsealError('ERR_INVALID_INPUT', 'publicKeyRequest must be an object');
      const pk = field(pkr, 'publicKey', 'public_key');
      if (pk !== undefined && pk !== null && !isObject(pk))
        throw new WaxsealError('ERR_INVALID_INPUT', 'publicKeyRequest.publicKey must be an object');
      const content = isObject(pk) ? optionalString(pk.content, 'publicKeyRequest.publicKey.content') : undefined;
      if (content === undefined)
        throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'publicKeyRequest.publicKey.content is missing: the public key was not provided');
      key = parsePublicKeyContent(content);
      if (this.#recording) record.keyFingerprint = keyFingerprint(key.spki);
      checkKeyStrength(key);
      const popField = field(pkr, 'proofOfPossession', 'proof_of_possession');
      if (popField === undefined || popField === null || popField === '')
        throw new WaxsealError('ERR_PROOF_OF_POSSESSION', 'publicKeyRequest.proofOfPossession is missing');
      await verifyProofOfPossession(key, principal.challenge, decodeProtoBytes(popField, 'publicKeyRequest.proofOfPossession'));
      hash = key.kind === 'ed25519' ? null : defaultHash(key.kind);
    }
    const algorithm = checkAlgorithmAllowed(this.#allowed, key, hash);
    record.keyAlgorithm = algorithm;

    if (this.#authorize) {
      const context: SigningRequestContext = {
        issuer: verified.issuer,
        claims: verified.claims,
        principal,
        extensions: {
          issuerV1: principal.issuer,
          issuer: principal.issuer,
          ...principal.extensions,
          ...(principal.subject ? { tokenSubject: principal.subject } : {}),
        },
        publicKey: {
          spki: key.spki,
          kind: key.kind,
          ...(key.rsaBits !== undefined ? { rsaBits: key.rsaBits } : {}),
          algorithm,
          fingerprint: record.keyFingerprint ?? keyFingerprint(key.spki),
        },
        form,
        remoteAddress: meta.remoteAddress,
        userAgent: meta.userAgent,
      };
      try {
        await this.#authorize(context);
      } catch (e) {
        if (e instanceof WaxsealError) throw e;
        this.#onInternalError(e);
        throw new WaxsealError('ERR_INTERNAL', 'the signing policy could not be evaluated', { cause: e });
      }
    }

    const cert = await this.#leaves.issue(principal, key.spki, this.#now());
    if (this.#audit) {
      record.serial = cert.serial;
      record.notBefore = cert.notBefore.toISOString();
      record.notAfter = cert.notAfter.toISOString();
      record.certificateSha256 = toHex(sha256(cert.der));
      try {
        await this.#audit({ ...record, time: new Date().toISOString(), result: 'issued', caKeyRef: this.#signer.keyRef });
      } catch (e) {
        this.#onInternalError(e);
        throw new WaxsealError('ERR_UNAVAILABLE', 'the audit log could not record the issuance, so the certificate was not released', {
          cause: e,
        });
      }
    }
    return cert.pem;
  }

  async #refused(e: unknown, record: { -readonly [K in keyof CaAuditEvent]?: CaAuditEvent[K] }): Promise<void> {
    if (!this.#audit) return;
    // An issuance whose audit record failed was already reported by #issue; do not record it twice.
    if (record.serial !== undefined && e instanceof WaxsealError && e.code === 'ERR_UNAVAILABLE') return;
    const err = e instanceof WaxsealError ? e : new WaxsealError('ERR_INTERNAL', 'internal error');
    try {
      await this.#audit({
        ...record,
        time: new Date().toISOString(),
        result: 'refused',
        errorCode: err.code,
        message: err.message,
        caKeyRef: this.#signer.keyRef,
      });
    } catch (auditError) {
      this.#onInternalError(auditError);
    }
  }
}

/** Reads an issuer configuration file (JSON or YAML in Fulcio's format). */
export function loadIssuerConfigFile(path: string, include?: readonly IssuerConfig[]): IssuerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read issuer configuration ${path}`, { cause: e });
  }
  return parseIssuerConfig(text, { source: path, ...(include ? { include } : {}) });
}

/** Runs the CA alone on `port` (0 = any) on 127.0.0.1 unless `host` says otherwise. */
export async function startCaServer(
  options: CaServiceOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningServer & { service: CaService }> {
  const service = await CaService.create(options);
  const running = await serveServices([service], {
    port,
    host,
    errorFormatter: fulcioErrorFormatter,
    maxBodyBytes: MAX_SIGNING_REQUEST_BYTES,
    onInternalError: (e) => (options.onInternalError ?? ((err) => console.error('ca: internal error:', err)))(e),
  });
  return { ...running, service };
}
