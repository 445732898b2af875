// The thin HTTP layer every Waxseal server shares: a tiny router, bounded body reading, and one
// way to turn errors into responses. Handlers throw WaxsealError; anything else becomes a logged
// 500 with no detail leaked. Servers never crash on a request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WaxsealError, ERROR_CODES } from '@waxseal/core';

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
  /** Parses the body as JSON (bounded); ERR_JSON_PARSE on bad JSON. */
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
        if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(s);
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

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > maxBytes) {
        done = true;
        reject(new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!done) reject(new WaxsealError('ERR_INVALID_INPUT', 'request body could not be read', { cause: e }));
    });
  });
}

function makeRequest(raw: IncomingMessage, params: Record<string, string>, defaultMax: number): Request {
  const url = new URL(raw.url ?? '/', 'http://localhost');
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
    async json<T>(maxBytes?: number): Promise<T> {
      const b = await body(maxBytes);
      try {
        return JSON.parse(b.toString('utf8')) as T;
      } catch {
        throw new WaxsealError('ERR_JSON_PARSE', 'request body is not valid JSON');
      }
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
    const rawRoute = opts.router.matchRaw(new URL(raw.url ?? '/', 'http://localhost').pathname);
    if (rawRoute) {
      (raw as IncomingMessage & { originalUrl?: string }).originalUrl = raw.url;
      raw.url = raw.url!.slice(rawRoute.prefix.length) || '/';
      rawRoute.listener(raw, res);
      return;
    }
    let request: Request | undefined;
    let format = opts.errorFormatter ?? defaultErrorFormatter;
    const run = async (): Promise<Response> => {
      const url = new URL(raw.url ?? '/', 'http://localhost');
      const m = opts.router.match(raw.method ?? 'GET', url.pathname);
      if (m === undefined) throw new WaxsealError('ERR_NOT_FOUND', `no route for ${url.pathname}`);
      if (m === 'method') throw new WaxsealError('ERR_METHOD_NOT_ALLOWED', `${raw.method} is not allowed on ${url.pathname}`);
      if (m.errorFormatter) format = m.errorFormatter;
      request = makeRequest(raw, m.params, max);
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
