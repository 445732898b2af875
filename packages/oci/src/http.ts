// One HTTP exchange over node:http/https, bounded: a deadline for the whole exchange and a cap
// on the body read (refused from Content-Length before reading, or as soon as the bytes pass it).
// No redirects and no retries here: the registry client decides those.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WaxsealError } from '@waxseal/core';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** Largest body read; more is an ERR_BODY_TOO_LARGE naming `what`. */
  maxBytes: number;
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM) for TLS. */
  ca?: string | undefined;
  what: string;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function send(req: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const isHttps = req.url.protocol === 'https:';
    const headers: Record<string, string> = { ...req.headers };
    if (req.body) headers['content-length'] = String(req.body.length);
    const fail = (e: WaxsealError) => {
      clearTimeout(timer);
      r.destroy();
      reject(e);
    };
    const opts = { method: req.method, headers, ...(isHttps && req.ca ? { ca: req.ca } : {}) };
    const r = (isHttps ? httpsRequest : httpRequest)(req.url, opts, (res) => {
      const status = res.statusCode ?? 0;
      // Error answers are read only far enough to quote them.
      const cap = status >= 200 && status < 300 ? req.maxBytes : Math.min(req.maxBytes, 64 << 10);
      const declared = Number(res.headers['content-length'] ?? -1);
      if (status >= 200 && status < 300 && declared > cap) {
        fail(
          new WaxsealError('ERR_BODY_TOO_LARGE', `${req.what} is ${declared} bytes, more than the ${cap} accepted`, { check: 'oci.size' }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > cap) {
          if (status >= 200 && status < 300) {
            fail(new WaxsealError('ERR_BODY_TOO_LARGE', `${req.what} is more than the ${cap} bytes accepted`, { check: 'oci.size' }));
          } else {
            res.destroy();
          }
          return;
        }
        chunks.push(c);
      });
      const done = () => {
        clearTimeout(timer);
        resolve({ status, headers: res.headers, body: new Uint8Array(Buffer.concat(chunks)) });
      };
      res.on('end', done);
      res.on('close', () => {
        if (!res.complete && size <= cap) fail(new WaxsealError('ERR_UNAVAILABLE', `${req.what}: the connection closed mid-answer`));
        else if (size > cap && !(status >= 200 && status < 300)) done();
      });
      res.on('error', () => undefined);
    });
    const timer = setTimeout(
      () => fail(new WaxsealError('ERR_UNAVAILABLE', `${req.what}: no complete answer from ${req.url.host} within ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );
    r.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new WaxsealError('ERR_UNAVAILABLE', `${req.what}: ${req.url.host} is unreachable: ${e.code ?? e.message}`, { cause: e }));
    });
    r.end(req.body ? Buffer.from(req.body.buffer, req.body.byteOffset, req.body.length) : undefined);
  });
}
