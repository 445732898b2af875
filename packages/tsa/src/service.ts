// The timestamp authority as a Waxseal Service, wire-compatible with sigstore/timestamp-authority:
//   POST /api/v1/timestamp            application/timestamp-query (DER) or application/json
//   GET  /api/v1/timestamp/certchain  application/pem-certificate-chain, leaf first
//   GET  /healthz
// Errors use timestamp-authority's JSON shape {"code": <http status>, "message": "..."}.
import { WaxsealError, verifySignature, certPublicKey, parseDer } from '@waxseal/core';
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

/** One timestamp issued: what the audit log records for a use of the TSA key. */
export interface TsaAuditEvent {
  remoteAddress: string | undefined;
  /** Hash algorithm and hex digest the client asked to timestamp. */
  hash: string;
  digest: string;
  keyRef: string;
}

export interface TsaServiceOptions extends TimestampIssuerOptions, TsaChainCheckOptions {
  /** Records every timestamp before it is released (fail closed: a failing audit gives 503). */
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
    const form = this.#requestForm(req.headers['content-type']);
    let body: Buffer;
    try {
      body = await req.body(this.#bodyLimit(form));
    } catch (e) {
      if (e instanceof WaxsealError && e.code === 'ERR_BODY_TOO_LARGE') throw this.#tooLarge(form);
      throw e;
    }
    const parsed = TsaService.#parse(form, body);
    const der = await this.issuer.issue(parsed, new Date());
    if (this.#audit) {
      try {
        await this.#audit({
          remoteAddress: req.raw.socket.remoteAddress,
          hash: parsed.hash,
          digest: Buffer.from(parsed.hashedMessage).toString('hex'),
          keyRef: this.#keyRef,
        });
      } catch (e) {
        throw new WaxsealError('ERR_UNAVAILABLE', 'the audit log could not record the timestamp; it was not released', { cause: e });
      }
    }
    return { status: this.#status, headers: { 'content-type': 'application/timestamp-reply' }, body: der };
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
      // With an audit hook the routed path (which records before answering) serves everything.
      if (this.#audit || req.method !== 'POST' || (q < 0 ? url : url.slice(0, q)) !== path) {
        fallback(req, res);
        return;
      }
      this.#serveTimestamp(req, res);
    };
  }

  #serveTimestamp(req: IncomingMessage, res: ServerResponse): void {
    let form: 'der' | 'json';
    try {
      form = this.#requestFormCached(req.headers['content-type']);
    } catch (e) {
      sendError(res, e);
      return;
    }
    const limit = this.#bodyLimit(form);
    if (Number(req.headers['content-length']) > limit) {
      sendError(res, this.#tooLarge(form));
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
        sendError(res, this.#tooLarge(form));
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
      let tsReq: TimestampRequest;
      try {
        tsReq = TsaService.#parse(form, body);
      } catch (e) {
        sendError(res, e);
        return;
      }
      this.issuer.enqueue(tsReq, new Date(), (err, der) => (err === undefined ? this.#sendToken(res, der!) : sendError(res, err)));
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
