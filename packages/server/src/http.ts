// The thin HTTP layer every Waxseal server shares: a tiny router, bounded body reading, and one
// way to turn errors into responses. Handlers throw WaxsealError; anything else becomes a logged
// 500 with no detail leaked. Servers never crash on a request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WaxsealError, ERROR_CODES, DEFAULT_JSON_MAX_DEPTH, JsonScanner, parseJsonBounded, type JsonLimits } from '@waxseal/core';

export interface Request {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Path parameters captured by `:name` segments or a trailing `*`. */
  params: Record<string, string>;
  raw: IncomingMessage;
  /** The request body, read lazily and bounded by `maxBytes`. */
  body(maxBytes?: number): Promise<Buffer>;
  /**
   * Parses the body as JSON within REQUEST_JSON_LIMITS and `maxBytes` (the route's body limit by
   * default). The nesting is scanned as the body arrives, so an over-deep body is refused
   * (ERR_INVALID_INPUT) before it is buffered; ERR_JSON_PARSE on bad JSON.
   */
  json<T = unknown>(maxBytes?: number): Promise<T>;
  /** Media type of the request without parameters, lower-cased ('' when absent). */
  mediaType: string;
}

export interface Response {
  status: number;
  headers?: Record<string, string | number>;
  body?: string | Uint8Array | undefined;
}

export type Handler = (req: Request) => Promise<Response> | Response;

/** Error body shape: Fulcio-style servers use {code:number,message}, the rest our own. */
export type ErrorFormatter = (err: WaxsealError) => Response;

export const DEFAULT_MAX_BODY = 1 << 20;

/**
 * Nesting and value limits for every JSON request body. No request we serve nests deeper than a
 * few levels or holds more than a few dozen values; the value cap bounds the heap one body can
 * cost (JSON.parse allocates ~8-56 bytes per value) whatever its size.
 */
export const REQUEST_JSON_LIMITS = { maxDepth: DEFAULT_JSON_MAX_DEPTH, maxValues: 16_384 } as const;

/** A request body (already read) parsed as JSON within REQUEST_JSON_LIMITS and `maxBytes`. */
export function parseRequestJson<T = unknown>(body: Uint8Array, maxBytes: number = body.length): T {
  return parseJsonBounded(body, requestJsonLimits(maxBytes)) as T;
}

function requestJsonLimits(maxBytes: number): JsonLimits {
  return { maxBytes, ...REQUEST_JSON_LIMITS, what: 'request body' };
}

/**
 * decodeURIComponent for request input: a malformed escape (`%ZZ`, a truncated UTF-8 sequence) is
 * the client's mistake, a 400 ERR_INVALID_INPUT, never a URIError (which would be a 500).
 */
export function decodeUriComponentSafe(s: string, what = 'the request path'): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} has a malformed percent-escape`);
  }
}

/** The request target as a URL; a target no URL parser accepts (e.g. `http://[/`) is ERR_INVALID_INPUT. */
export function requestUrl(rawUrl: string | undefined): URL {
  try {
    return new URL(rawUrl ?? '/', 'http://localhost');
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the request target is not a valid URL');
  }
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

export function text(status: number, body: string, contentType = 'text/plain; charset=utf-8'): Response {
  return { status, headers: { 'content-type': contentType }, body };
}

/** Default error body: {"code":"ERR_…","message":"…"}. */
export const defaultErrorFormatter: ErrorFormatter = (err) => json(err.status, err.toJSON());

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
  errorFormatter: ErrorFormatter | undefined;
}

export interface RouteOptions {
  /** How errors from this route are rendered (e.g. Fulcio's {code,message} shape). */
  errorFormatter?: ErrorFormatter;
}

/** A node:http listener that takes over a whole path prefix (e.g. a Koa app such as oidc-provider). */
export type RawListener = (req: IncomingMessage, res: ServerResponse) => void;

export class Router {
  readonly #routes: Route[] = [];
  readonly #raw: { prefix: string; listener: RawListener }[] = [];

  /**
   * Hands every request under `prefix` to `listener` untouched. The listener sees the original
   * URL; `req.url` is rewritten to the part after the prefix, as Express-style mounting does.
   */
  mountRaw(prefix: string, listener: RawListener): this {
    this.#raw.push({ prefix: prefix.replace(/\/$/, ''), listener });
    return this;
  }

  matchRaw(path: string): { prefix: string; listener: RawListener } | undefined {
    return this.#raw.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`));
  }

  /** Adds a route. Path segments `:name` capture one segment; a final `*` captures the rest. */
  on(method: string, path: string, handler: Handler, opts: RouteOptions = {}): this {
    this.#routes.push({
      method: method.toUpperCase(),
      parts: path.split('/').filter(Boolean),
      handler,
      errorFormatter: opts.errorFormatter,
    });
    return this;
  }

  get(path: string, h: Handler, opts?: RouteOptions): this {
    return this.on('GET', path, h, opts);
  }

  post(path: string, h: Handler, opts?: RouteOptions): this {
    return this.on('POST', path, h, opts);
  }

  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string>; errorFormatter: ErrorFormatter | undefined } | 'method' | undefined {
    const segs = path.split('/').filter(Boolean);
    let methodMismatch = false;
    for (const r of this.#routes) {
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < r.parts.length; i++) {
        const p = r.parts[i]!;
        if (p === '*' && i === r.parts.length - 1) {
          params['*'] = segs.slice(i).join('/');
          i = segs.length;
          break;
        }
        const s = segs[i];
        if (s === undefined) {
          ok = false;
          break;
        }
        if (p.startsWith(':')) params[p.slice(1)] = decodeUriComponentSafe(s);
        else if (p !== s) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (r.parts[r.parts.length - 1] !== '*' && segs.length !== r.parts.length) continue;
      if (r.method !== method && !(r.method === 'GET' && method === 'HEAD')) {
        methodMismatch = true;
        continue;
      }
      return { handler: r.handler, params, errorFormatter: r.errorFormatter };
    }
    return methodMismatch ? 'method' : undefined;
  }
}

/**
 * Reads the body up to `maxBytes`. `onChunk` sees each chunk as it arrives and may refuse the body
 * by throwing: from then on nothing is kept, but the rest (at most `maxBytes`) is still read and
 * dropped before the refusal is answered, because node:http closes a connection answered early
 * and most clients then report the broken pipe instead of the answer.
 */
/**
 * Requests whose body was refused part-way. Their connection is closed after the answer instead of
 * draining the rest: reading megabytes only to discard them costs memory (each chunk is a Buffer
 * that V8 frees only at its next GC) and lets an attacker keep the server busy.
 */
const abandonedBodies = new WeakSet<IncomingMessage>();

function abandon(req: IncomingMessage): void {
  abandonedBodies.add(req);
  req.removeAllListeners('data');
  req.pause();
}

/** How long a connection whose body was refused stays half-open for its client to read the answer. */
const LINGER_MS = 2000;

/**
 * The unread rest of a refused body stays in the kernel, and the connection must close. Closing at
 * once would make the kernel answer the client's next write with a reset, and most clients
 * (Node's among them) then drop the answer they already received. So: send the answer, half-close
 * (FIN), read nothing more, and let the client close first, or close it after LINGER_MS.
 */
function lingerAfterAnswer(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  // node:http calls destroySoon() once a `connection: close` answer is written.
  socket.destroySoon = function halfCloseThenDestroy(this: typeof socket) {
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

function readBody(req: IncomingMessage, maxBytes: number, onChunk?: (c: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      abandon(req);
      reject(new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (e: unknown) => {
      done = true;
      chunks.length = 0;
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > maxBytes) {
        abandon(req);
        finish(new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`));
        return;
      }
      if (onChunk) {
        try {
          onChunk(c);
        } catch (e) {
          abandon(req);
          finish(e);
          return;
        }
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!done) finish(new WaxsealError('ERR_INVALID_INPUT', 'request body could not be read', { cause: e }));
    });
    // A client that goes away mid-body: settle rather than hold the handler forever.
    req.on('close', () => {
      if (!done) finish(new WaxsealError('ERR_INVALID_INPUT', 'request body was cut short'));
    });
  });
}

function makeRequest(raw: IncomingMessage, url: URL, params: Record<string, string>, defaultMax: number): Request {
  let cached: Promise<Buffer> | undefined;
  const body = (maxBytes = defaultMax) => (cached ??= readBody(raw, maxBytes));
  const ct = String(raw.headers['content-type'] ?? '');
  return {
    method: raw.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: raw.headers,
    params,
    raw,
    body,
    async json<T>(maxBytes = defaultMax): Promise<T> {
      const limits = requestJsonLimits(maxBytes);
      if (!cached) {
        // Scan while reading: an over-deep body is refused at the first chunk that passes the limit.
        const scanner = new JsonScanner(limits);
        cached = readBody(raw, maxBytes, (c) => scanner.push(c));
      }
      return parseJsonBounded(await cached, limits) as T;
    },
    mediaType: ct.split(';')[0]!.trim().toLowerCase(),
  };
}

function send(res: ServerResponse, r: Response, head: boolean): void {
  const body =
    r.body === undefined
      ? undefined
      : typeof r.body === 'string'
        ? Buffer.from(r.body)
        : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  const headers: Record<string, string | number> = { ...r.headers };
  if (body) headers['content-length'] = body.length;
  if (res.req && abandonedBodies.has(res.req)) {
    headers.connection = 'close';
    lingerAfterAnswer(res);
  }
  res.writeHead(r.status, headers);
  res.end(head ? undefined : body);
}

export interface ServeOptions {
  router: Router;
  /** Largest body any handler may read unless it asks for less or more. */
  maxBodyBytes?: number;
  errorFormatter?: ErrorFormatter;
  /** Called for unexpected (non-Waxseal) errors; defaults to console.error. */
  onInternalError?: (e: unknown, req: Request) => void;
}

/** A request listener for node:http that dispatches through the router. */
export function requestListener(opts: ServeOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  return (raw, res) => {
    let target: URL;
    try {
      target = requestUrl(raw.url);
    } catch (e) {
      // Listeners must never throw: node:http would take the whole process down.
      send(res, (opts.errorFormatter ?? defaultErrorFormatter)(e as WaxsealError), false);
      return;
    }
    const rawRoute = opts.router.matchRaw(target.pathname);
    if (rawRoute) {
      (raw as IncomingMessage & { originalUrl?: string }).originalUrl = raw.url;
      raw.url = raw.url!.slice(rawRoute.prefix.length) || '/';
      rawRoute.listener(raw, res);
      return;
    }
    let request: Request | undefined;
    let format = opts.errorFormatter ?? defaultErrorFormatter;
    const run = async (): Promise<Response> => {
      const url = target;
      const m = opts.router.match(raw.method ?? 'GET', url.pathname);
      if (m === undefined) throw new WaxsealError('ERR_NOT_FOUND', `no route for ${url.pathname}`);
      if (m === 'method') throw new WaxsealError('ERR_METHOD_NOT_ALLOWED', `${raw.method} is not allowed on ${url.pathname}`);
      if (m.errorFormatter) format = m.errorFormatter;
      request = makeRequest(raw, url, m.params, max);
      return m.handler(request);
    };
    run()
      .then(
        (r) => send(res, r, raw.method === 'HEAD'),
        (e: unknown) => {
          if (e instanceof WaxsealError) {
            send(res, format(e), false);
          } else {
            (opts.onInternalError ?? ((err) => console.error('internal error:', err)))(e, request!);
            send(res, format(new WaxsealError('ERR_INTERNAL', 'internal error')), false);
          }
        },
      )
      .catch(() => res.destroy());
  };
}

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts a server on host:port (127.0.0.1 and an OS-chosen port by default). */
export async function listen(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningServer> {
  const server = createServer({ keepAliveTimeout: 5000, requestTimeout: 30000, headersTimeout: 10000 }, listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  return {
    server,
    url,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Status text for an error code (for logs). */
export function describeCode(code: keyof typeof ERROR_CODES): string {
  return ERROR_CODES[code].about;
}
