// Multi-threaded HTTP front end for a standalone log server. The main thread owns the log
// (sequencer, storage, tree, signing key); N worker threads listen on the same port
// (SO_REUSEPORT, the kernel spreads connections) and each does the per-request work of the v2
// write path: HTTP, JSON, validation, signature verification, canonicalization and the
// response. The main thread receives canonical entries in batches and answers each once a
// checkpoint covering it is published, with the inclusion proof. Every other route is
// forwarded to the main thread's router unchanged.
import { Worker } from 'node:worker_threads';
import { createServer, type Server } from 'node:http';
import { WaxsealError, encodePem, concat, siblingModuleUrl, utf8 } from '@waxseal/core';
import { defaultErrorFormatter, parseRequestJson, type ErrorFormatter, type Request, type Response, type Router } from '@waxseal/server';
import type { LogService, LogServiceOptions } from './service.ts';

/** What a worker needs to validate entries exactly as the service does. */
export interface FrontendConfig {
  port: number;
  host: string;
  maxRequestBytes: number;
  maxV2RequestBytes: number;
  frozen: boolean;
  v2LogId: Uint8Array;
  trustedCas: string[];
  allowPublicKeys: boolean;
  policy: { maxSignatures: number; maxEnvelopeBytes: number; maxArtifactBytes: number; allowedTypes?: string[] };
}

export interface AddItem {
  id: number;
  body: Uint8Array;
  indexKeys: string[];
}

export type AddReply =
  | { id: number; ok: true; index: number; duplicate: boolean; size: number; rootHash: Uint8Array; note: string; proof: Uint8Array }
  | { id: number; ok: false; code: string; message: string };

export interface HttpForward {
  id: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

export interface HttpReply {
  id: number;
  status: number;
  headers: Record<string, string | number>;
  body: string | Uint8Array | undefined;
}

/** Runs a forwarded request through the main router with the same error rules as http.ts. */
async function dispatch(router: Router, m: HttpForward): Promise<Response> {
  const url = new URL(m.url, 'http://localhost');
  let format: ErrorFormatter = defaultErrorFormatter;
  try {
    const match = router.match(m.method, url.pathname);
    if (match === undefined) throw new WaxsealError('ERR_NOT_FOUND', `no route for ${url.pathname}`);
    if (match === 'method') throw new WaxsealError('ERR_METHOD_NOT_ALLOWED', `${m.method} is not allowed on ${url.pathname}`);
    if (match.errorFormatter) format = match.errorFormatter;
    const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
    const req: Request = {
      method: m.method,
      path: url.pathname,
      query: url.searchParams,
      headers: m.headers,
      params: match.params,
      raw: undefined as never,
      body: async (max?: number) => {
        if (max !== undefined && body.length > max) throw new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${max} bytes`);
        return body;
      },
      json: async <T>(max?: number): Promise<T> => {
        if (max !== undefined && body.length > max) throw new WaxsealError('ERR_BODY_TOO_LARGE', `request body exceeds ${max} bytes`);
        try {
          return parseRequestJson<T>(body, max);
        } catch {
          throw new WaxsealError('ERR_JSON_PARSE', 'request body is not valid JSON');
        }
      },
      mediaType: String(m.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase(),
    };
    return await match.handler(req);
  } catch (e) {
    if (e instanceof WaxsealError) return format(e);
    console.error('internal error:', e);
    return format(new WaxsealError('ERR_INTERNAL', 'internal error'));
  }
}

export interface RunningFrontends {
  /** Not listening: the worker threads own the port. Present for RunningServer compatibility. */
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts `count` front-end workers on host:port (port 0 picks one); the main thread only sequences.
 * `router` must have the service mounted at the root.
 */
export async function startFrontends(
  service: LogService,
  router: Router,
  opts: LogServiceOptions,
  count: number,
  port: number,
  host: string,
): Promise<RunningFrontends> {
  const maxRequestBytes = opts.maxRequestBytes ?? 10 << 20;
  // The main thread does not accept connections itself: with SO_REUSEPORT it would get a share
  // of the v2 traffic and verify it inline next to the sequencer. Workers forward other routes.
  const main: Server = createServer();
  let actualPort = port;
  const policy = service.ctx.policy;
  const config: FrontendConfig = {
    port,
    host,
    maxRequestBytes,
    maxV2RequestBytes: opts.maxV2RequestBytes ?? 256 * 1024,
    frozen: opts.frozen ?? false,
    v2LogId: service.v2LogId,
    trustedCas: policy.trustedCas.map((c) => encodePem('CERTIFICATE', c.der)),
    allowPublicKeys: policy.allowPublicKeys,
    policy: {
      maxSignatures: policy.maxSignatures,
      maxEnvelopeBytes: policy.maxEnvelopeBytes,
      maxArtifactBytes: policy.maxArtifactBytes,
      ...(policy.allowedTypes ? { allowedTypes: [...policy.allowedTypes] } : {}),
    },
  };
  const workers: Worker[] = [];
  const spawn = (cfg: FrontendConfig): Promise<number> => {
    const w = new Worker(siblingModuleUrl(import.meta.url, 'frontend-worker'), { workerData: cfg });
    workers.push(w);
    let outbox: AddReply[] = [];
    let flushing = false;
    const reply = (r: AddReply) => {
      outbox.push(r);
      if (!flushing) {
        flushing = true;
        setImmediate(() => {
          flushing = false;
          const batch = outbox;
          outbox = [];
          w.postMessage({ type: 'added', replies: batch });
        });
      }
    };
    return new Promise((resolve, reject) => {
      w.once('error', reject);
      w.on('message', (m: { type: 'ready'; port: number } | { type: 'add'; items: AddItem[] } | ({ type: 'http' } & HttpForward)) => {
        if (m.type === 'ready') return resolve(m.port);
        if (m.type === 'add') {
          for (const item of m.items) {
            service.log
              .add({ body: item.body, indexKeys: item.indexKeys.map(utf8) })
              .then(async (r) => {
                // Copy into one compact buffer: views into tile memory would clone whole tiles.
                const proof = r.duplicate ? new Uint8Array(0) : concat(...(await service.log.inclusionProof(r.index, r.checkpoint.size)));
                reply({
                  id: item.id,
                  ok: true,
                  index: r.index,
                  duplicate: r.duplicate,
                  size: r.checkpoint.size,
                  rootHash: Uint8Array.from(r.checkpoint.rootHash),
                  note: r.checkpoint.note,
                  proof,
                });
              })
              .catch((e: unknown) => {
                const err = e instanceof WaxsealError ? e : new WaxsealError('ERR_INTERNAL', 'internal error');
                reply({ id: item.id, ok: false, code: err.code, message: err.message });
              });
          }
          return;
        }
        void dispatch(router, m).then((res) => {
          const r: HttpReply = { id: m.id, status: res.status, headers: res.headers ?? {}, body: res.body };
          w.postMessage({ type: 'http', reply: r });
        });
      });
    });
  };
  // The first worker binds (port 0 picks one); the others join it on the same port.
  actualPort = await spawn(config);
  await Promise.all(Array.from({ length: count - 1 }, () => spawn({ ...config, port: actualPort })));
  return {
    server: main,
    port: actualPort,
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
