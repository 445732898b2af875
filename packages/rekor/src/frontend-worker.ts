// A front-end worker thread (see frontend.ts): serves POST /api/v2/log/entries itself and
// forwards every other request to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { createServer } from 'node:http';
import { WaxsealError, ERROR_CODES, type ErrorCode } from '@waxseal/core';
import { Router, requestListener, type Response } from '@waxseal/server';
import { SignatureVerifier } from './verifier.ts';
import { DEFAULT_POLICY, type EntryContext } from './entries/common.ts';
import { parseTrustedCas } from './pki/x509.ts';
import { handleCreateV2, v2ErrorFormatter, type V2AddResult } from './service.ts';
import type { AddItem, AddReply, FrontendConfig, HttpReply } from './frontend.ts';

const cfg = workerData as FrontendConfig;
const port = parentPort!;
const ctx: EntryContext = {
  verifier: new SignatureVerifier({ workers: 0 }),
  policy: {
    ...DEFAULT_POLICY,
    maxSignatures: cfg.policy.maxSignatures,
    maxEnvelopeBytes: cfg.policy.maxEnvelopeBytes,
    maxArtifactBytes: cfg.policy.maxArtifactBytes,
    ...(cfg.policy.allowedTypes ? { allowedTypes: new Set(cfg.policy.allowedTypes) } : {}),
    trustedCas: parseTrustedCas(cfg.trustedCas),
    allowPublicKeys: cfg.allowPublicKeys,
  },
};

let seq = 0;
const adds = new Map<number, { resolve: (r: V2AddResult) => void; reject: (e: unknown) => void }>();
const https = new Map<number, (r: HttpReply) => void>();
let outbox: AddItem[] = [];
let flushScheduled = false;

function add(body: Uint8Array, indexKeys: string[]): Promise<V2AddResult> {
  return new Promise((resolve, reject) => {
    const id = ++seq;
    adds.set(id, { resolve, reject });
    outbox.push({ id, body, indexKeys });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        const items = outbox;
        outbox = [];
        port.postMessage({ type: 'add', items });
      });
    }
  });
}

function split(proof: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < proof.length; o += 32) out.push(proof.subarray(o, o + 32));
  return out;
}

port.on('message', (m: { type: 'added'; replies: AddReply[] } | { type: 'http'; reply: HttpReply }) => {
  if (m.type === 'added') {
    for (const r of m.replies) {
      const p = adds.get(r.id);
      adds.delete(r.id);
      if (!p) continue;
      if (r.ok)
        p.resolve({
          index: r.index,
          duplicate: r.duplicate,
          checkpoint: { size: r.size, rootHash: r.rootHash, note: r.note },
          proof: split(r.proof),
        });
      else p.reject(new WaxsealError((r.code in ERROR_CODES ? r.code : 'ERR_INTERNAL') as ErrorCode, r.message));
    }
    return;
  }
  const cb = https.get(m.reply.id);
  https.delete(m.reply.id);
  cb?.(m.reply);
});

const router = new Router();
router.post(
  '/api/v2/log/entries',
  (req) => {
    if (cfg.frozen) throw new WaxsealError('ERR_LOG_FROZEN', 'This log has been frozen, please switch to the latest log.');
    return handleCreateV2(req, { ctx, maxBytes: cfg.maxV2RequestBytes, v2LogId: cfg.v2LogId, add: (e) => add(e.body, e.indexKeys) });
  },
  { errorFormatter: v2ErrorFormatter },
);
const forward = async (req: Parameters<Parameters<Router['get']>[1]>[0]): Promise<Response> => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? Buffer.alloc(0) : await req.body(cfg.maxRequestBytes);
  const id = ++seq;
  const reply = await new Promise<HttpReply>((resolve) => {
    https.set(id, resolve);
    port.postMessage({
      type: 'http',
      id,
      method: req.method,
      url: req.raw.url ?? req.path,
      headers: req.headers,
      body: new Uint8Array(body),
    });
  });
  return { status: reply.status, headers: reply.headers, body: reply.body };
};
for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) router.on(method, '/*', forward);

const server = createServer(
  { keepAliveTimeout: 5000, requestTimeout: 30000, headersTimeout: 10000 },
  requestListener({ router, maxBodyBytes: cfg.maxRequestBytes }),
);
server.listen({ port: cfg.port, host: cfg.host, reusePort: true }, () => {
  const addr = server.address();
  port.postMessage({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : cfg.port });
});
