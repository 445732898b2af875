// The timestamp authority as a Waxseal Service, wire-compatible with sigstore/timestamp-authority:
//   POST /api/v1/timestamp            application/timestamp-query (DER) or application/json
//   GET  /api/v1/timestamp/certchain  application/pem-certificate-chain, leaf first
//   GET  /healthz
// Errors use timestamp-authority's JSON shape {"code": <http status>, "message": "..."}.
import { WaxsealError, verifySignature, certPublicKey, parseDer, type ErrorCode } from '@waxseal/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  json,
  text,
  Router,
  listen,
  requestListener,
  DEFAULT_MAX_BODY,
  type ErrorFormatter,
  type Request,
  type Response,
  type RunningServer,
  type Service,
  withService,
} from '@waxseal/server';
import { checkTsaChain, chainToPem, type TsaChainCheckOptions } from './chain.ts';
import {
  MAX_JSON_REQUEST_BYTES,
  encodeTimeStampReq,
  parseJsonTimestampBody,
  parseTimeStampReq,
  type TimestampRequest,
} from './timestamp.ts';
import { TimestampIssuer, type TimestampIssuerOptions } from './issuer.ts';

/**
 * One timestamp request: what the audit log records for a use of the TSA key, or for a request
 * the TSA refused or failed to answer (then `errorCode` is set and no timestamp was released).
 */
export interface TsaAuditEvent {
  remoteAddress: string | undefined;
  /** Hash algorithm and hex digest the client asked to timestamp (absent when the request did not parse). */
  hash?: string;
  digest?: string;
  keyRef: string;
  /** Why no timestamp was released: a refusal (4xx codes) or a failure (5xx codes). */
  errorCode?: ErrorCode;
  message?: string;
}

export interface TsaServiceOptions extends TimestampIssuerOptions, TsaChainCheckOptions {
  /**
   * Records every timestamp before it is released (fail closed: a failing audit gives 503), and
   * every refused or failed timestamp request before the error is answered.
   */
  audit?: (event: TsaAuditEvent) => Promise<void>;
  /** Answer 201 instead of 200 (timestamp-authority before v2.0.0, --use-http-201). */
  useHttp201?: boolean;
  /** Largest DER request body (default 1 MiB, --max-request-body-size). */
  maxRequestBodyBytes?: number;
}

/** timestamp-authority's error body: {"code": <http status>, "message": "..."}. */
export const tsaErrorFormatter: ErrorFormatter = (err) => {
  const headers: Record<string, string> =
    err.code === 'ERR_METHOD_NOT_ALLOWED' && typeof err.detail?.['allow'] === 'string' ? { allow: err.detail['allow'] } : {};
  return json(err.status, { code: err.status, message: err.message }, headers);
};

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a Content-Type header as a media type (RFC 9110 8.3.1), strictly as Go's
 * mime.ParseMediaType does: a malformed type or parameter is an error, not a guess.
 * Returns the lower-cased "type/subtype".
 */
export function parseMediaType(header: string | undefined): string {
  const fail = (why: string): never => {
    throw new WaxsealError('ERR_MEDIA_TYPE', `failed to parse content-type header: ${why}`);
  };
  if (header === undefined || header.trim() === '') fail('no media type');
  const [typePart, ...params] = header!.split(';');
  const mediaType = typePart!.trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  if (slash < 0 || !TOKEN_RE.test(mediaType.slice(0, slash)) || !TOKEN_RE.test(mediaType.slice(slash + 1))) {
    fail(`invalid media type ${JSON.stringify(mediaType.slice(0, 80))}`);
  }
  const seen = new Set<string>();
  // Parameters: name=token or name="quoted string"; splitting on ';' is safe for the quoted
  // form as long as the quotes balance, which the check below enforces.
  let pending = '';
  for (const raw of params) {
    pending = pending ? `${pending};${raw}` : raw;
    if ((pending.match(/(?<!\\)"/g)?.length ?? 0) % 2 === 1) continue; // ';' inside quotes
    const p = pending.trim();
    pending = '';
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) fail('invalid media parameter');
    const name = p.slice(0, eq).trim().toLowerCase();
    const value = p.slice(eq + 1).trim();
    if (!TOKEN_RE.test(name)) fail('invalid media parameter');
    if (!(TOKEN_RE.test(value) || /^"(?:[^"\\]|\\.)*"$/.test(value))) fail('invalid media parameter');
    if (seen.has(name)) fail(`duplicate parameter name ${name}`);
    seen.add(name);
  }
  if (pending !== '') fail('unbalanced quotes in a media parameter');
  return mediaType;
}

export class TsaService implements Service {
  readonly name = 'tsa';
  readonly issuer: TimestampIssuer;
  /** The chain served at /api/v1/timestamp/certchain (leaf first, root last). */
  readonly certChainPem: string;
  readonly #status: number;
  readonly #maxBody: number;
  readonly #audit: TsaServiceOptions['audit'];
  readonly #keyRef: string;

  private constructor(issuer: TimestampIssuer, o: TsaServiceOptions) {
    this.issuer = issuer;
    this.#audit = o.audit;
    this.#keyRef = o.signer.keyRef;
    this.certChainPem = chainToPem(o.chain);
    this.#status = o.useHttp201 ? 201 : 200;
    this.#maxBody = o.maxRequestBodyBytes ?? DEFAULT_MAX_BODY;
  }

  /**
   * Checks the chain (refusing to start on a bad one), builds the issuer, and proves the signer
   * works with the chain by verifying one token's signature with the leaf key.
   */
  static async create(o: TsaServiceOptions): Promise<TsaService> {
    const checkOptions: TsaChainCheckOptions = {};
    if (o.now) checkOptions.now = o.now;
    if (o.enforceIntermediateEku !== undefined) checkOptions.enforceIntermediateEku = o.enforceIntermediateEku;
    checkTsaChain(o.chain, o.signer.publicKeySpki, checkOptions);
    const issuer = new TimestampIssuer(o);
    await selfTest(issuer);
    return new TsaService(issuer, o);
  }

  mount(router: Router, prefix = ''): void {
    const opts = { errorFormatter: tsaErrorFormatter };
    const path = `${prefix}/api/v1/timestamp`;
    router.post(path, (req) => this.#timestamp(req), opts);
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      router.on(
        method,
        path,
        () => {
          throw new WaxsealError('ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed on ${path}; use POST`, {
            detail: { allow: 'POST' },
          });
        },
        opts,
      );
    }
    router.get(`${path}/certchain`, () => text(200, this.certChainPem, 'application/pem-certificate-chain'), opts);
    router.get(`${prefix}/healthz`, () => json(200, { status: 'ok' }), opts);
  }

  async close(): Promise<void> {
    // The signer belongs to whoever created it; the issuer's signing thread (if any) is ours.
    await this.issuer.close();
  }

  /** Which request form a Content-Type selects; 415/400 for anything else. */
  #requestForm(contentType: string | undefined): 'der' | 'json' {
    const mediaType = parseMediaType(contentType);
    if (!mediaType.startsWith('application/')) {
      throw new WaxsealError('ERR_MEDIA_TYPE', `content-type must be an application media type, got ${mediaType}`);
    }
    if (mediaType === 'application/timestamp-query') return 'der';
    if (mediaType === 'application/json') return 'json';
    throw new WaxsealError(
      'ERR_TSA_REQUEST',
      `unsupported content type ${mediaType}: send application/timestamp-query (DER) or application/json`,
    );
  }

  #bodyLimit(form: 'der' | 'json'): number {
    return form === 'json' ? MAX_JSON_REQUEST_BYTES : this.#maxBody;
  }

  #tooLarge(form: 'der' | 'json'): WaxsealError {
    return new WaxsealError(
      'ERR_BODY_TOO_LARGE',
      form === 'json'
        ? `timestamp request is too large: JSON requests are limited to ${MAX_JSON_REQUEST_BYTES} bytes`
        : `request body exceeds ${this.#maxBody} bytes`,
    );
  }

  static #parse(form: 'der' | 'json', body: Uint8Array): TimestampRequest {
    return form === 'der' ? parseTimeStampReq(body) : parseJsonTimestampBody(body);
  }

  // The route as mounted on a shared Router (the all-in-one dev server).
  async #timestamp(req: Request): Promise<Response> {
    let parsed: TimestampRequest | undefined;
    try {
      return await this.#timestampRouted(req, (p) => (parsed = p));
    } catch (e) {
      await this.#refused(req.raw.socket.remoteAddress, e, parsed);
      throw e;
    }
  }

  async #timestampRouted(req: Request, parsedAs: (p: TimestampRequest) => void): Promise<Response> {
    const form = this.#requestForm(req.headers['content-type']);
    let body: Buffer;
    try {
      body = await req.body(this.#bodyLimit(form));
    } catch (e) {
      if (e instanceof WaxsealError && e.code === 'ERR_BODY_TOO_LARGE') throw this.#tooLarge(form);
      throw e;
    }
    const parsed = TsaService.#parse(form, body);
    parsedAs(parsed);
    // The record holds only what the request says, so it is made durable while the token is
    // signed; the token is released once both are done (fail closed: no record, no token).
    const recorded = this.#audit ? this.#recordIssued(req.raw.socket.remoteAddress, parsed) : undefined;
    recorded?.catch(() => undefined);
    let der: Uint8Array;
    try {
      der = await this.issuer.issue(parsed, new Date());
    } catch (e) {
      await recorded?.catch(() => undefined);
      throw e;
    }
    await recorded;
    return { status: this.#status, headers: { 'content-type': 'application/timestamp-reply' }, body: der };
  }

  /**
   * Records a timestamp being issued; ERR_UNAVAILABLE (marked as already handled) when that fails.
   * Should signing then fail, a refusal record with the same digest follows (#refused).
   */
  async #recordIssued(remoteAddress: string | undefined, parsed: TimestampRequest): Promise<void> {
    try {
      await this.#audit!({
        remoteAddress,
        hash: parsed.hash,
        digest: Buffer.from(parsed.hashedMessage).toString('hex'),
        keyRef: this.#keyRef,
      });
    } catch (e) {
      const err = new WaxsealError('ERR_UNAVAILABLE', 'the audit log could not record the timestamp; it was not released', { cause: e });
      AUDIT_FAILED.add(err);
      throw err;
    }
  }

  /** Records a refused or failed request (never throws: the client gets the original error). */
  async #refused(remoteAddress: string | undefined, e: unknown, parsed: TimestampRequest | undefined): Promise<void> {
    if (!this.#audit || AUDIT_FAILED.has(e as object)) return;
    const err = e instanceof WaxsealError ? e : new WaxsealError('ERR_INTERNAL', 'internal error');
    try {
      await this.#audit({
        remoteAddress,
        ...(parsed ? { hash: parsed.hash, digest: Buffer.from(parsed.hashedMessage).toString('hex') } : {}),
        keyRef: this.#keyRef,
        errorCode: err.code,
        message: err.message,
      });
    } catch (auditError) {
      console.error('tsa: the audit log could not record a refused request:', auditError);
    }
  }

  /**
   * A node:http listener for the TSA on its own: POST <prefix>/api/v1/timestamp is answered
   * here directly (the hot path: no router, no URL object, no promises; the issuer's batch
   * calls back), and every other request goes to `fallback` (the generic router).
   */
  listener(
    fallback: (req: IncomingMessage, res: ServerResponse) => void,
    prefix = '',
  ): (req: IncomingMessage, res: ServerResponse) => void {
    const path = `${prefix}/api/v1/timestamp`;
    return (req, res) => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      if (req.method !== 'POST' || (q < 0 ? url : url.slice(0, q)) !== path) {
        fallback(req, res);
        return;
      }
      this.#serveTimestamp(req, res);
    };
  }

  #serveTimestamp(req: IncomingMessage, res: ServerResponse): void {
    let tsReq: TimestampRequest | undefined;
    // Refusals are recorded before they are answered, as on the routed path.
    const fail = (e: unknown) => {
      if (!this.#audit) return sendError(res, e);
      void this.#refused(req.socket.remoteAddress, e, tsReq).then(() => sendError(res, e));
    };
    let form: 'der' | 'json';
    try {
      form = this.#requestFormCached(req.headers['content-type']);
    } catch (e) {
      fail(e);
      return;
    }
    const limit = this.#bodyLimit(form);
    if (Number(req.headers['content-length']) > limit) {
      fail(this.#tooLarge(form));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        fail(this.#tooLarge(form));
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {
      failed = true;
      res.destroy();
    });
    req.on('end', () => {
      if (failed) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      let parsed: TimestampRequest;
      try {
        parsed = TsaService.#parse(form, body);
      } catch (e) {
        fail(e);
        return;
      }
      tsReq = parsed;
      // As on the routed path: recorded while signed, released once both are done.
      const recorded = this.#audit ? this.#recordIssued(req.socket.remoteAddress, parsed) : undefined;
      recorded?.catch(() => undefined);
      this.issuer.enqueue(parsed, new Date(), (err, der) => {
        if (!recorded) return err === undefined ? this.#sendToken(res, der!) : fail(err);
        recorded.then(
          () => (err === undefined ? this.#sendToken(res, der!) : fail(err)),
          (e: unknown) => sendError(res, e),
        );
      });
    });
  }

  #sendToken(res: ServerResponse, der: Uint8Array): void {
    res.writeHead(this.#status, { 'content-type': 'application/timestamp-reply', 'content-length': der.length });
    res.end(der);
  }

  // Clients send the same Content-Type on every request; remember a few accepted ones.
  readonly #formCache = new Map<string, 'der' | 'json'>();

  #requestFormCached(contentType: string | undefined): 'der' | 'json' {
    if (contentType === undefined) return this.#requestForm(contentType);
    const hit = this.#formCache.get(contentType);
    if (hit) return hit;
    const form = this.#requestForm(contentType);
    if (this.#formCache.size < 32) this.#formCache.set(contentType, form);
    return form;
  }
}

/** Errors that report a failed audit of an issued timestamp: not recorded again as refusals. */
const AUDIT_FAILED = new WeakSet<object>();

function sendError(res: ServerResponse, e: unknown): void {
  let err: WaxsealError;
  if (e instanceof WaxsealError) err = e;
  else {
    console.error('tsa: internal error:', e);
    err = new WaxsealError('ERR_INTERNAL', 'internal error');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const r = tsaErrorFormatter(err);
  const body = Buffer.from(String(r.body ?? ''));
  res.writeHead(r.status, { ...r.headers, 'content-length': body.length });
  res.end(body);
}

/** Issues one token and verifies its signature with the leaf key (catches signer/hash mix-ups). */
async function selfTest(issuer: TimestampIssuer): Promise<void> {
  const probe = parseTimeStampReq(encodeTimeStampReq({ hash: 'sha256', hashedMessage: new Uint8Array(32) }));
  const der = await issuer.issue(probe);
  // TimeStampResp > ContentInfo > [0] > SignedData > signerInfos (last) > SignerInfo
  const signedData = parseDer(der).children[1]!.children[1]!.children[0]!;
  const signerInfo = signedData.children[signedData.children.length - 1]!.children[0]!;
  const attrs = new Uint8Array(signerInfo.children[3]!.raw);
  attrs[0] = 0x31;
  const signature = signerInfo.children[5]!.value;
  const leafKey = certPublicKey(issuer.tokens.chain[0]!);
  if (!verifySignature(leafKey, attrs, signature, { hash: issuer.signer.hash })) {
    throw new WaxsealError(
      'ERR_CHAIN_INVALID',
      'TSA self-test failed: a token signed by the configured signer does not verify with the TSA leaf key',
    );
  }
}

export interface StartedTsa extends RunningServer {
  service: TsaService;
}

/** Runs the TSA alone on host:port (127.0.0.1, OS-chosen port by default), hot path included. */
export async function startTsaServer(options: TsaServiceOptions, port = 0, host = '127.0.0.1'): Promise<StartedTsa> {
  // On its own, the TSA signs on a second thread unless told not to (see TimestampIssuerOptions).
  const service = await TsaService.create({ signingThread: true, ...options });
  const router = new Router();
  service.mount(router);
  const fallback = requestListener({ router, errorFormatter: tsaErrorFormatter });
  return withService(await listen(service.listener(fallback), port, host), service);
}
