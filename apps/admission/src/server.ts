// The admission webhook: AdmissionReview v1 over HTTPS. `/validate` judges every image of a
// workload against the policies (all matching policies must pass, the engine decides one image;
// the answers are ANDed across images), `/mutate` pins tags to digests with a JSON patch.
// policy-controller's own paths (`/validations`, `/mutations`) are served too, so its webhook
// configurations work unchanged apart from the service name.
//
// Every review gets one deadline (default 8 s, below the API server's default timeoutSeconds of
// 10): the engine sees it as an AbortSignal and may answer with the policy's fail-open choice; if
// it has not answered shortly after, the image is denied with a message saying so. Bodies are
// bounded (3 MiB, what the API server sends at most); anything the server cannot read gets an
// AdmissionReview denial (when the request's uid could be read) or a 4xx with a JSON body. No
// request can stop the server: the worst is a logged denial.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TrustedRoot } from '@waxseal/bundle';
import { WaxsealError } from '@waxseal/core';
import type { RegistryOptions } from '@waxseal/oci';
import {
  DEFAULT_INCLUDE_LABEL,
  loadPolicyStore,
  parseLabelRequirement,
  type PolicyStore,
  ADMISSION_MAX_BODY,
  DEFAULT_MAX_IMAGES,
  denyResponse,
  labelsSatisfy,
  mutationResponse,
  parseAdmissionReview,
  pinPatch,
  planReview,
  referenceProblem,
  reviewId,
  reviewIdentity,
  validationResponse,
  type AdmissionReview,
  type AdmissionReviewResponse,
  type ContainerImage,
  type ContainerOutcome,
  type ImageOutcome,
  type LabelRequirement,
  type Workload,
} from '@waxseal/policy';
import { Router, json, requestListener, type Request, type Response } from '@waxseal/server';
import type { AdmissionEngine } from './contract.ts';
import { PolicyEngine } from './engine.ts';
import { tufTrustRootLoader } from './engine-tuf.ts';
import { KubeSource, type KubeSourceOptions } from './kube-source.ts';
import { raceSignal, registryResolver, type DigestResolver } from './resolve.ts';
import { DirectorySource, type GenerationalStore, type PolicySource } from './sources.ts';
import { readTlsPair, TlsReloader } from './tls.ts';

export const DEFAULT_DEADLINE_MS = 8000;
/** Time the engine gets after the deadline to deliver its own verdict (a fail-open policy's allow) before the server denies. */
const GRACE_MS = 300;
/** Images judged at once within one review. */
const REVIEW_CONCURRENCY = 16;

export const VALIDATE_PATHS = ['/validate', '/validations'] as const;
export const MUTATE_PATHS = ['/mutate', '/mutations'] as const;

export interface ReviewLog {
  endpoint: 'validate' | 'mutate';
  uid: string;
  kind: string;
  namespace?: string;
  name?: string;
  operation: string;
  allowed: boolean;
  /** Why the review was skipped, or the denial message. */
  detail?: string;
  patched?: number;
  ms: number;
}

export interface AdmissionServerOptions<S extends GenerationalStore = GenerationalStore> {
  /** Where the policies come from (a folder or the Kubernetes API); the server waits for nothing, /readyz tells. */
  source: PolicySource<S>;
  engine: AdmissionEngine<S>;
  /** Tag -> digest resolution for /mutate. Without it, /mutate allows without patching. */
  resolver?: DigestResolver;
  /** PEM certificate (chain) and key files; reloaded when they change. */
  tlsCert: string;
  tlsKey: string;
  port?: number;
  host?: string;
  /** Deadline of one review in ms (default 8000). */
  deadlineMs?: number;
  /** Most images judged in one object (default 256). */
  maxImages?: number;
  /**
   * Judge only digest-pinned references (default true, as policy-controller: the mutating webhook
   * pins tags first; a tag in /validate means it could not be resolved, and a tag can move).
   */
  requireDigest?: boolean;
  /**
   * Judge only namespaces with this label (the webhook configuration's namespaceSelector does the
   * filtering in production; this is defence in depth and needs `namespaceLabels`).
   */
  requireNamespaceLabel?: LabelRequirement;
  /** A namespace's labels (the Kubernetes API); undefined when the namespace is unknown. */
  namespaceLabels?: (namespace: string, signal: AbortSignal) => Promise<Record<string, string> | undefined>;
  /** dockerconfigjson objects for a workload (its imagePullSecrets and its service account's), from the Kubernetes API. */
  pullSecrets?: (workload: Workload, signal: AbortSignal) => Promise<unknown[]>;
  /** TLS file poll interval (default 10 s). */
  tlsPollMs?: number;
  /** One entry per review. */
  onReview?: (entry: ReviewLog) => void;
  /** Operational messages (TLS reloads, internal errors). */
  log?: (message: string) => void;
}

export interface RunningAdmissionServer {
  server: Server;
  url: string;
  port: number;
  tls: TlsReloader;
  /** Answers one review without HTTP (the benchmark and tests use it to compare with the wire). */
  review(endpoint: 'validate' | 'mutate', review: AdmissionReview): Promise<AdmissionReviewResponse>;
  close(): Promise<void>;
}

function outcome(allowed: boolean, errors: string[] = [], warnings: string[] = []): ImageOutcome {
  return { allowed, errors, warnings };
}

/** Runs `fn` over `items` with at most `limit` at once, keeping the order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The core of the webhook, without HTTP. */
export class AdmissionHandler<S extends GenerationalStore = GenerationalStore> {
  readonly #o: AdmissionServerOptions<S>;
  readonly #deadline: number;

  constructor(opts: AdmissionServerOptions<S>) {
    this.#o = opts;
    this.#deadline = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (opts.requireNamespaceLabel && !opts.namespaceLabels) {
      throw new WaxsealError('ERR_CONFIG', 'requiring a namespace label needs namespace lookups (the Kubernetes API source)');
    }
  }

  get deadlineMs(): number {
    return this.#deadline;
  }

  /** Is the namespace opted in? True when no label is required. */
  async #namespaceIncluded(ns: string, signal: AbortSignal): Promise<boolean> {
    const req = this.#o.requireNamespaceLabel;
    if (!req || !this.#o.namespaceLabels) return true;
    const labels = await raceSignal(this.#o.namespaceLabels(ns, signal), signal, `reading namespace ${ns}`);
    // An unknown namespace cannot have opted in; but fail closed: judge it.
    return labels === undefined ? true : labelsSatisfy(labels, req);
  }

  async #pullSecrets(w: Workload, signal: AbortSignal): Promise<{ secrets: unknown[]; warning?: string }> {
    if (!this.#o.pullSecrets) return { secrets: [] };
    try {
      return { secrets: await raceSignal(this.#o.pullSecrets(w, signal), signal, 'reading pull secrets') };
    } catch (e) {
      // Go on anonymously: a private image then fails with the registry's own answer.
      return { secrets: [], warning: `pull secrets could not be read: ${(e as Error).message}` };
    }
  }

  async review(endpoint: 'validate' | 'mutate', review: AdmissionReview): Promise<AdmissionReviewResponse> {
    const started = performance.now();
    const r = review.request;
    // Timers cleared as soon as the review is answered: AbortSignal.timeout would keep one timer
    // per review alive for the whole deadline (tens of thousands under load, and GC pauses).
    const soft = new AbortController();
    const hardAc = new AbortController();
    const softTimer = setTimeout(
      () =>
        soft.abort(
          new WaxsealError('ERR_UNAVAILABLE', `the ${this.#deadline} ms admission deadline passed`, { check: 'admission.deadline' }),
        ),
      this.#deadline,
    );
    const hardTimer = setTimeout(() => hardAc.abort(), this.#deadline + GRACE_MS);
    const signal = soft.signal;
    const hard = hardAc.signal;
    let answer: AdmissionReviewResponse;
    let detail: string | undefined;
    let patched: number | undefined;
    try {
      const plan = planReview(review, { maxImages: this.#o.maxImages ?? DEFAULT_MAX_IMAGES });
      if (plan.action === 'skip') {
        detail = plan.reason;
        answer = mutationResponse(review, []);
      } else if (plan.action === 'deny') {
        answer = denyResponse(reviewId(review), plan.message, plan.code, plan.reason);
      } else if (!(await this.#namespaceIncluded(plan.workload.namespace, signal))) {
        detail = `namespace ${plan.workload.namespace} has not opted in`;
        answer = mutationResponse(review, []);
      } else if (endpoint === 'validate') {
        answer = await this.#validate(review, plan.workload, signal, hard);
      } else {
        const m = await this.#mutate(review, plan.workload, signal);
        answer = m.answer;
        patched = m.patched;
      }
    } catch (e) {
      // Whatever went wrong, the API server gets an answer: a denial that says why.
      const internal = !(e instanceof WaxsealError);
      if (internal) this.#o.log?.(`internal error judging ${r.uid}: ${(e as Error)?.stack ?? e}`);
      const msg = internal ? 'internal error while judging the request' : (e as WaxsealError).message;
      answer = denyResponse(reviewId(review), msg, internal ? 500 : (e as WaxsealError).status, internal ? 'InternalError' : undefined);
    } finally {
      clearTimeout(softTimer);
      clearTimeout(hardTimer);
    }
    if (!answer.response.allowed) detail = answer.response.status?.message;
    this.#o.onReview?.({
      endpoint,
      uid: r.uid,
      kind: r.kind.kind,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      ...(r.name ? { name: r.name } : {}),
      operation: r.operation,
      allowed: answer.response.allowed,
      ...(detail ? { detail } : {}),
      ...(patched !== undefined ? { patched } : {}),
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
    return answer;
  }

  async #validate(review: AdmissionReview, w: Workload, signal: AbortSignal, hard: AbortSignal): Promise<AdmissionReviewResponse> {
    if (!this.#o.source.current()) {
      const st = this.#o.source.status();
      return denyResponse(reviewId(review), `policies are not loaded${st.error ? `: ${st.error}` : ''}`, 503, 'ServiceUnavailable');
    }
    const requireDigest = this.#o.requireDigest ?? true;
    const { secrets, warning } = await this.#pullSecrets(w, signal);
    // One check per distinct image; the engine's cache makes repeats cheap, but not free.
    const distinct = [...new Set(w.images.filter((c) => !referenceProblem(c.image, requireDigest)).map((c) => c.image))];
    const verdicts = new Map<string, ImageOutcome>();
    const results = await mapLimit(distinct, REVIEW_CONCURRENCY, (image) => this.#checkOne(image, w, secrets, signal, hard));
    distinct.forEach((image, i) => verdicts.set(image, results[i]!));
    const outcomes: ContainerOutcome[] = w.images.map((container: ContainerImage) => {
      const problem = referenceProblem(container.image, requireDigest);
      return { container, outcome: problem ? outcome(false, [problem]) : verdicts.get(container.image)! };
    });
    return validationResponse(review, outcomes, warning ? [warning] : []);
  }

  async #checkOne(image: string, w: Workload, pullSecrets: unknown[], signal: AbortSignal, hard: AbortSignal): Promise<ImageOutcome> {
    try {
      const check = this.#o.engine.check(
        {
          image,
          namespace: w.namespace,
          kind: w.kind,
          apiVersion: w.apiVersion,
          labels: w.labels,
          pullSecrets,
          resource: { spec: w.object.spec, metadata: w.object.metadata, typemeta: { apiVersion: w.apiVersion, kind: w.kind } },
        },
        signal,
      );
      check.catch(() => {}); // settled after the race when the deadline wins
      const v = await raceSignal(check, hard, 'verification');
      return { allowed: v.allowed, errors: v.errors, warnings: v.warnings, ...(v.digest ? { digest: v.digest } : {}) };
    } catch (e) {
      if (e instanceof WaxsealError && e.check === 'admission.deadline') {
        return outcome(false, [`verification did not finish within the ${this.#deadline} ms admission deadline`]);
      }
      if (e instanceof WaxsealError) return outcome(false, [e.message]);
      this.#o.log?.(`internal error checking ${image}: ${(e as Error)?.stack ?? e}`);
      return outcome(false, ['internal error while verifying the image']);
    }
  }

  async #mutate(review: AdmissionReview, w: Workload, signal: AbortSignal): Promise<{ answer: AdmissionReviewResponse; patched: number }> {
    const resolver = this.#o.resolver;
    if (!resolver) return { answer: mutationResponse(review, []), patched: 0 };
    // Through the pods/ephemeralcontainers subresource only ephemeral containers may change: the
    // API server refuses a patch that touches anything else.
    const patchable =
      review.request.subResource === 'ephemeralcontainers' ? w.images.filter((c) => c.field === 'ephemeralContainers') : w.images;
    const toResolve = [
      ...new Set(patchable.filter((c) => !referenceProblem(c.image, false) && referenceProblem(c.image, true)).map((c) => c.image)),
    ];
    if (toResolve.length === 0) return { answer: mutationResponse(review, []), patched: 0 };
    const { secrets } = await this.#pullSecrets(w, signal);
    const digests = new Map<string, string>();
    await mapLimit(toResolve, REVIEW_CONCURRENCY, async (image) => {
      try {
        digests.set(image, await resolver(image, secrets, signal));
      } catch (e) {
        // Left as it is: the validating webhook denies the unpinned reference and says why.
        this.#o.log?.(`could not resolve ${image}: ${(e as Error).message}`);
      }
    });
    const ops = pinPatch(patchable.map((c) => ({ container: c, digest: digests.get(c.image) })));
    return { answer: mutationResponse(review, ops), patched: ops.length };
  }
}

/** Starts the webhook over HTTPS. The source should already be started (or starting): /readyz follows it. */
export async function serveAdmission<S extends GenerationalStore>(opts: AdmissionServerOptions<S>): Promise<RunningAdmissionServer> {
  const handler = new AdmissionHandler(opts);
  const pair = readTlsPair({ certFile: opts.tlsCert, keyFile: opts.tlsKey });
  const router = new Router();
  const endpoint =
    (kind: 'validate' | 'mutate') =>
    async (req: Request): Promise<Response> => {
      if (req.mediaType && req.mediaType !== 'application/json') {
        throw new WaxsealError('ERR_MEDIA_TYPE', `an AdmissionReview is application/json, not ${req.mediaType}`);
      }
      const body = await req.body(ADMISSION_MAX_BODY);
      let review: AdmissionReview;
      try {
        review = parseAdmissionReview(body);
      } catch (e) {
        // With a uid the API server can match the answer to its request: answer as a review.
        const id = reviewIdentity(e);
        if (id) return json(200, denyResponse(id, (e as Error).message, 400));
        throw e;
      }
      return json(200, await handler.review(kind, review));
    };
  for (const p of VALIDATE_PATHS) router.post(p, endpoint('validate'));
  for (const p of MUTATE_PATHS) router.post(p, endpoint('mutate'));
  router.get('/healthz', () => json(200, { status: 'ok' }));
  router.get('/readyz', () => {
    const st = opts.source.status();
    return json(st.ready ? 200 : 503, {
      status: st.ready ? 'ready' : 'not ready',
      ...(st.generation ? { generation: st.generation } : {}),
      ...(st.error ? { error: st.error } : {}),
      ...(st.loadedAt ? { loadedAt: st.loadedAt.toISOString() } : {}),
    });
  });
  const server = createServer(
    // The API server keeps connections open between reviews; a slow client gets no more than this.
    { cert: pair.cert, key: pair.key, keepAliveTimeout: 30_000, requestTimeout: 30_000, headersTimeout: 10_000 },
    requestListener({
      router,
      maxBodyBytes: ADMISSION_MAX_BODY,
      onInternalError: (e) => opts.log?.(`internal error: ${(e as Error)?.stack ?? e}`),
    }),
  );
  // A TLS handshake that fails (a scanner, a client with the wrong CA) is the client's problem.
  server.on('tlsClientError', () => {});
  server.on('clientError', (_e, socket) => socket.destroy());
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const tls = new TlsReloader(server, { certFile: opts.tlsCert, keyFile: opts.tlsKey }, pair, {
    ...(opts.tlsPollMs !== undefined ? { pollMs: opts.tlsPollMs } : {}),
    onReload: () => opts.log?.('TLS certificate reloaded'),
    onError: (e) => opts.log?.(`TLS certificate not reloaded: ${(e as Error).message}`),
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls,
    review: (kind, review) => handler.review(kind, review),
    async close() {
      tls.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

export interface StartAdmissionOptions {
  /** A folder of policy YAML (a mounted ConfigMap), re-read when it changes. */
  policyDir?: string;
  /** Policies from the Kubernetes API instead (true: in-cluster or ~/.kube/config). */
  kube?: boolean | KubeSourceOptions;
  tlsCert: string;
  tlsKey: string;
  port?: number;
  host?: string;
  /** What an image no policy matches gets (default deny, as policy-controller). */
  noMatch?: 'deny' | 'allow' | 'warn';
  /** Judge only namespaces with this label (`key=value` or `key`); needs `kube`. */
  requireNamespaceLabel?: boolean;
  /** The opt-in label (default policy.sigstore.dev/include=true). */
  includeLabel?: string;
  deadlineMs?: number;
  maxImages?: number;
  requireDigest?: boolean;
  /** Registry client options (insecure registries, CA, timeouts). */
  registry?: RegistryOptions;
  /** Trust for keyless authorities without trustRootRef. */
  defaultTrustedRoot?: TrustedRoot;
  cacheSize?: number;
  /** Where TrustRoots with `remote` keep their TUF metadata (default <tmpdir>/waxseal-admission-tuf). */
  tufCacheDir?: string;
  tlsPollMs?: number;
  /** Folder poll interval (default 5 s). */
  pollMs?: number;
  onReview?: (entry: ReviewLog) => void;
  log?: (message: string) => void;
}

export interface StartedAdmissionServer extends RunningAdmissionServer {
  source: PolicySource<PolicyStore>;
  engine: PolicyEngine;
}

/**
 * The webhook with its policy source and the decision engine: policies from a folder or the
 * Kubernetes API, reloaded as they change. A first load that fails leaves the server up but not
 * ready (/readyz 503, reviews denied with the reason) while the source keeps trying.
 */
export async function startAdmissionServer(o: StartAdmissionOptions): Promise<StartedAdmissionServer> {
  if (!o.policyDir === !o.kube)
    throw new WaxsealError('ERR_CONFIG', 'give exactly one policy source: a policy folder or the Kubernetes API');
  if (o.requireNamespaceLabel && !o.kube) {
    throw new WaxsealError(
      'ERR_CONFIG',
      'requiring the namespace label needs the Kubernetes API (namespace labels are not in an AdmissionReview)',
    );
  }
  const log = o.log ?? (() => {});
  // Refuse unusable TLS files before anything starts.
  readTlsPair({ certFile: o.tlsCert, keyFile: o.tlsKey });
  let source: PolicySource<PolicyStore>;
  let kube: KubeSource | undefined;
  if (o.policyDir) {
    if (!existsSync(o.policyDir)) throw new WaxsealError('ERR_CONFIG', `the policy folder ${o.policyDir} does not exist`);
    source = new DirectorySource({
      dir: o.policyDir,
      load: loadPolicyStore,
      ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
      log: (event, detail) => log(event === 'loaded' ? `policies loaded: ${detail}` : `policies not loaded: ${detail}`),
    });
  } else {
    kube = new KubeSource({ ...(typeof o.kube === 'object' ? o.kube : {}), log: (event, detail) => log(`kubernetes ${event}: ${detail}`) });
    source = kube;
  }
  let first: PolicyStore | undefined;
  try {
    first = await source.start();
  } catch (e) {
    log(`policies not loaded yet: ${(e as Error).message}`);
  }
  const empty: PolicyStore = {
    clusterPolicies: [],
    imagePolicies: [],
    trustRoots: new Map(),
    generation: 'none',
    fingerprints: new Map(),
    warnings: [],
  };
  const engine = new PolicyEngine(first ?? empty, {
    noMatch: o.noMatch ?? 'deny',
    ...(o.registry ? { registry: o.registry } : {}),
    ...(o.defaultTrustedRoot ? { defaultTrustedRoot: o.defaultTrustedRoot } : {}),
    ...(o.cacheSize !== undefined ? { cacheSize: o.cacheSize } : {}),
    loadTrustRoot: tufTrustRootLoader({ cacheDir: o.tufCacheDir ?? join(tmpdir(), 'waxseal-admission-tuf') }),
    ...(kube ? { readPullSecret: kube.readPullSecret } : {}),
    onError: (e) => log(`engine: ${(e as Error)?.message ?? e}`),
  });
  source.onChange((s) => engine.setStore(s));
  // A store that loaded between start() failing and onChange being attached.
  const now = source.current();
  if (now && now !== first) engine.setStore(now);
  const running = await serveAdmission({
    source,
    engine,
    resolver: registryResolver(o.registry ?? {}),
    tlsCert: o.tlsCert,
    tlsKey: o.tlsKey,
    ...(o.port !== undefined ? { port: o.port } : {}),
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(o.deadlineMs !== undefined ? { deadlineMs: o.deadlineMs } : {}),
    ...(o.maxImages !== undefined ? { maxImages: o.maxImages } : {}),
    ...(o.requireDigest !== undefined ? { requireDigest: o.requireDigest } : {}),
    ...(o.tlsPollMs !== undefined ? { tlsPollMs: o.tlsPollMs } : {}),
    ...(o.requireNamespaceLabel && kube
      ? {
          requireNamespaceLabel: o.includeLabel ? parseLabelRequirement(o.includeLabel) : DEFAULT_INCLUDE_LABEL,
          namespaceLabels: kube.namespaceLabels,
        }
      : {}),
    ...(kube ? { pullSecrets: kube.pullSecrets } : {}),
    ...(o.onReview ? { onReview: o.onReview } : {}),
    log,
  });
  return {
    ...running,
    source,
    engine,
    async close() {
      await running.close();
      await source.close();
    },
  };
}
