// The admission decision engine: for one image in one workload, find the policies that apply,
// resolve the image (tag -> digest, with the pod's pull-secret credentials), fetch what each
// authority needs from the registry, and decide with @waxseal/policy (pure). Decisions are
// cached per (repository@digest, policy, policy fingerprint), so editing a policy or a TrustRoot
// it references re-verifies while other policies keep their entries; the cache is an LRU bounded
// by `cacheSize`. A check honours its AbortSignal: when the deadline passes the verdict is a clear
// denial at once, while the fetch goes on in the background and fills the cache for the retry.
import { createHash } from 'node:crypto';
import { WaxsealError } from '@waxseal/core';
import type { TrustedRoot } from '@waxseal/bundle';
import {
  RegistryClient,
  parseReference,
  resolveImage,
  type FetchedManifest,
  type ImageReference,
  type RegistryOptions,
} from '@waxseal/oci';
import {
  decideImage,
  evaluatePolicy,
  evidenceRequest,
  matchingPolicies,
  policyKey,
  policyLabel,
  type AnyImagePolicy,
  type Evidence,
  type EvaluationInput,
  type NoMatchPolicy,
  type PolicyDecision,
  type PolicyStore,
  type TrustRoot,
  type CelProgram,
  kmsKeyUris,
  needsConfigFiles,
  remotePolicyKey,
  remotePolicyRefs,
} from '@waxseal/policy';
import { EvidenceFetcher, ReferrersApiMemo, type InflightReads } from './engine-fetch.ts';
import {
  fetchConfigFiles,
  fetchRemotePolicy,
  kmsPublicKey,
  loadRemotePolicy,
  type KmsPublicKeyLoader,
  type RemotePolicyFetcher,
} from './engine-io.ts';
import { credentialsFromPullSecrets } from './pull-secrets.ts';

export interface ImageCheck {
  /** The image as written in the pod spec. */
  image: string;
  namespace: string;
  /** The kind of the resource under review (Pod, Deployment...). */
  kind: string;
  /** The resource's labels (for `match`). */
  labels: Record<string, string>;
  /** dockerconfigjson objects from imagePullSecrets and the service account. */
  pullSecrets?: unknown[];
  /** The resource's apiVersion (default: the usual one for the kind). */
  apiVersion?: string;
  /** The resource itself, for policies with includeSpec / includeObjectMeta / includeTypeMeta. */
  resource?: { spec?: unknown; metadata?: unknown; typemeta?: unknown };
}

export interface ImageVerdict {
  image: string;
  /** What the image resolved to (for the tag->digest patch). */
  digest?: string;
  allowed: boolean;
  /** Why denied (each names the policy and authority). */
  errors: string[];
  /** warn-mode failures, no-match warnings. */
  warnings: string[];
  /** The policies that matched. */
  policies: string[];
}

export interface EngineOptions {
  noMatch?: NoMatchPolicy;
  /** Most cached policy decisions (default 10000). */
  cacheSize?: number;
  /** How long a passing decision stays cached (default 1 h). */
  cacheTtlMs?: number;
  /** How long a failing decision stays cached (default 30 s: a signature may be added). */
  negativeCacheTtlMs?: number;
  registry?: RegistryOptions;
  /** Trust for authorities without trustRootRef (policy-controller uses the public Sigstore root). */
  defaultTrustedRoot?: TrustedRoot;
  /** Loads the trusted root of a TrustRoot with `remote` or `repository` (through TUF: engine-tuf.ts). */
  loadTrustRoot?: (tr: TrustRoot, signal: AbortSignal) => Promise<TrustedRoot>;
  /** How long a loaded remote trusted root is used before it is read again (default 1 h). */
  trustRootRefreshMs?: number;
  /**
   * Fetches the PEM public key of a `key.kms` authority (default: through @waxseal/keys-awskms or
   * -gcpkms, engine-io.ts). Keys are cached per URI for `kmsRefreshMs` (default 1 h).
   */
  kmsPublicKey?: KmsPublicKeyLoader;
  kmsRefreshMs?: number;
  /** Fetches a `remote` policy's body (default: https, or http to loopback; engine-io.ts). */
  fetchRemotePolicy?: RemotePolicyFetcher;
  /** Reads a dockerconfigjson Secret from the workload's namespace (for signaturePullSecrets). */
  readPullSecret?: (namespace: string, name: string, signal: AbortSignal) => Promise<unknown | undefined>;
  /** Called with each error the engine recovers from (for logs). */
  onError?: (e: unknown) => void;
  /** The clock (tests). */
  now?: () => number;
}

interface CacheEntry {
  decision: PolicyDecision;
  expires: number;
}

const MAX_CLIENTS = 64;
const MAX_REMOTE_POLICIES = 256;
const MAX_KMS_KEYS = 256;

function hashOf(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 32);
}

function deadlineError(signal: AbortSignal, what: string): WaxsealError {
  const reason = signal.reason instanceof WaxsealError ? signal.reason.message : 'the admission deadline passed';
  return new WaxsealError('ERR_UNAVAILABLE', `${what}: ${reason}`, { check: 'admission.deadline' });
}

/** Resolves with `p`, or rejects as soon as `signal` aborts (the work itself continues). */
function race<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(deadlineError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(deadlineError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function usesResource(p: AnyImagePolicy): boolean {
  const pol = p.spec.policy;
  return !!pol && (pol.includeSpec || pol.includeObjectMeta || pol.includeTypeMeta);
}

export class PolicyEngine {
  #store: PolicyStore;
  readonly #opts: EngineOptions;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #clients = new Map<string, RegistryClient>();
  /** Trusted roots loaded for remote/repository TrustRoots, by name + TrustRoot identity. */
  #fetchedRoots = new Map<string, { tr: TrustRoot; root: Promise<TrustedRoot>; at: number }>();
  /** KMS public keys by URI. */
  readonly #kmsKeys = new Map<string, { pem: Promise<string>; at: number }>();
  /** Compiled remote policies by remotePolicyKey (content-addressed: never stale). */
  readonly #remotePolicies = new Map<string, Promise<CelProgram>>();
  /** Repositories whose registry has no referrers API (read through the tag schema directly). */
  readonly #referrersMemo: ReferrersApiMemo;
  /** Registry reads running now, joined by concurrent checks of the same image (engine-fetch.ts). */
  readonly #inflightReads: InflightReads = new WeakMap();

  constructor(store: PolicyStore, opts: EngineOptions = {}) {
    this.#store = store;
    this.#opts = opts;
    this.#referrersMemo = new ReferrersApiMemo({ now: () => this.#now() });
  }

  get store(): PolicyStore {
    return this.#store;
  }

  /** A policy reload: entries under other fingerprints stop matching (and age out of the LRU). */
  setStore(store: PolicyStore): void {
    this.#store = store;
    for (const [name, f] of this.#fetchedRoots) if (store.trustRoots.get(name) !== f.tr) this.#fetchedRoots.delete(name);
  }

  /** Number of cached decisions (for tests and metrics). */
  get cacheEntries(): number {
    return this.#cache.size;
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }

  #client(pullSecrets: readonly unknown[]): RegistryClient {
    const key = pullSecrets.length ? hashOf(pullSecrets) : '';
    const hit = this.#clients.get(key);
    if (hit) {
      this.#clients.delete(key);
      this.#clients.set(key, hit);
      return hit;
    }
    const base = this.#opts.registry ?? {};
    const fromSecrets = pullSecrets.length ? credentialsFromPullSecrets(pullSecrets) : undefined;
    const fallback = base.credentials;
    const c = new RegistryClient({
      ...base,
      credentials: (registry) => fromSecrets?.(registry) ?? fallback?.(registry),
    });
    this.#clients.set(key, c);
    if (this.#clients.size > MAX_CLIENTS) this.#clients.delete(this.#clients.keys().next().value!);
    return c;
  }

  #cacheGet(key: string): PolicyDecision | undefined {
    const e = this.#cache.get(key);
    if (!e) return undefined;
    this.#cache.delete(key);
    if (e.expires <= this.#now()) return undefined;
    this.#cache.set(key, e); // most recently used last
    return e.decision;
  }

  #cacheSet(key: string, d: PolicyDecision): void {
    const size = this.#opts.cacheSize ?? 10_000;
    if (size <= 0) return;
    const ttl = d.passed ? (this.#opts.cacheTtlMs ?? 3_600_000) : (this.#opts.negativeCacheTtlMs ?? 30_000);
    this.#cache.delete(key);
    this.#cache.set(key, { decision: d, expires: this.#now() + ttl });
    while (this.#cache.size > size) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async #trustRootsFor(
    policies: AnyImagePolicy[],
    signal: AbortSignal,
  ): Promise<{ roots: Map<string, TrustedRoot>; errors: Map<string, string> }> {
    const out = new Map<string, TrustedRoot>();
    const errors = new Map<string, string>();
    const names = new Set<string>();
    for (const p of policies) {
      for (const a of p.spec.authorities)
        for (const r of [a.keyless?.trustRootRef, a.ctlog?.trustRootRef, a.rfc3161timestamp?.trustRootRef]) if (r) names.add(r);
    }
    // Several TrustRoots load concurrently.
    await Promise.all(
      [...names].map(async (name) => {
        const tr = this.#store.trustRoots.get(name);
        if (!tr || tr.spec.sigstoreKeys || !this.#opts.loadTrustRoot) return;
        let f = this.#fetchedRoots.get(name);
        const stale = f !== undefined && this.#now() - f.at > (this.#opts.trustRootRefreshMs ?? 3_600_000);
        if (!f || f.tr !== tr || stale) {
          const old = f;
          const load = this.#opts.loadTrustRoot(tr, signal);
          // While a refresh runs, keep using the root already loaded.
          const entry = { tr, root: old && old.tr === tr ? load.catch(() => old.root) : load, at: this.#now() };
          entry.root.catch((e: unknown) => {
            // A failed load is retried by the next check.
            if (this.#fetchedRoots.get(name) === entry) this.#fetchedRoots.delete(name);
            this.#opts.onError?.(e);
          });
          this.#fetchedRoots.set(name, entry);
          f = entry;
        }
        try {
          out.set(name, await f.root);
        } catch (e) {
          // The authorities naming it fail with this reason.
          errors.set(name, `cannot load its trusted root: ${e instanceof Error ? e.message : String(e)}`);
        }
      }),
    );
    return { roots: out, errors };
  }

  /** Settles every load in `items` (started or cached by `get`), splitting values from failure reasons. */
  async #settle<T>(
    items: readonly string[],
    get: (item: string) => Promise<T>,
  ): Promise<{ values: Map<string, T>; errors: Map<string, string> }> {
    const values = new Map<string, T>();
    const errors = new Map<string, string>();
    await Promise.all(
      items.map(async (k) => {
        try {
          values.set(k, await get(k));
        } catch (e) {
          errors.set(k, e instanceof Error ? e.message : String(e));
        }
      }),
    );
    return { values, errors };
  }

  #kmsKey(uri: string, signal: AbortSignal): Promise<string> {
    const hit = this.#kmsKeys.get(uri);
    if (hit && this.#now() - hit.at <= (this.#opts.kmsRefreshMs ?? 3_600_000)) return hit.pem;
    const load = (this.#opts.kmsPublicKey ?? kmsPublicKey)(uri, signal);
    // While a refresh runs, keep using the key already fetched; a failed first load is retried next time.
    const entry = { pem: hit ? load.catch(() => hit.pem) : load, at: this.#now() };
    entry.pem.catch((e: unknown) => {
      if (this.#kmsKeys.get(uri) === entry) this.#kmsKeys.delete(uri);
      this.#opts.onError?.(e);
    });
    this.#kmsKeys.delete(uri);
    this.#kmsKeys.set(uri, entry);
    if (this.#kmsKeys.size > MAX_KMS_KEYS) this.#kmsKeys.delete(this.#kmsKeys.keys().next().value!);
    return entry.pem;
  }

  #remotePolicy(key: string, refs: ReadonlyMap<string, { url: string; sha256sum: string }>, signal: AbortSignal): Promise<CelProgram> {
    const hit = this.#remotePolicies.get(key);
    if (hit) return hit;
    const p = loadRemotePolicy(refs.get(key)!, this.#opts.fetchRemotePolicy ?? fetchRemotePolicy, signal);
    p.catch((e: unknown) => {
      if (this.#remotePolicies.get(key) === p) this.#remotePolicies.delete(key);
      this.#opts.onError?.(e);
    });
    this.#remotePolicies.set(key, p);
    if (this.#remotePolicies.size > MAX_REMOTE_POLICIES) this.#remotePolicies.delete(this.#remotePolicies.keys().next().value!);
    return p;
  }

  /** Judges one image. Never throws: every failure is a verdict with the reason. */
  async check(req: ImageCheck, signal: AbortSignal): Promise<ImageVerdict> {
    const verdict: ImageVerdict = { image: req.image, allowed: false, errors: [], warnings: [], policies: [] };
    let ref: ImageReference;
    let policies: AnyImagePolicy[];
    try {
      ref = parseReference(req.image);
      policies = matchingPolicies(this.#store, {
        image: req.image,
        namespace: req.namespace,
        kind: req.kind,
        labels: req.labels,
        ...(req.apiVersion ? { apiVersion: req.apiVersion } : {}),
      });
    } catch (e) {
      verdict.errors.push(`${req.image}: ${e instanceof Error ? e.message : String(e)}`);
      return verdict;
    }
    if (ref.digest) verdict.digest = ref.digest;
    verdict.policies = policies.map(policyLabel);
    if (policies.length === 0) {
      const d = decideImage(
        [],
        { image: req.image, digest: ref.digest ?? '', evidence: new Map(), trustRoots: this.#store.trustRoots },
        this.#opts.noMatch ?? 'deny',
      );
      return { ...verdict, allowed: d.allowed, errors: d.errors, warnings: d.warnings };
    }
    const work = this.#decide(req, ref, policies, signal);
    work.catch((e: unknown) => this.#opts.onError?.(e));
    try {
      const r = await race(work, signal, `verifying ${req.image}`);
      return { ...verdict, ...r };
    } catch (e) {
      verdict.errors.push(
        e instanceof WaxsealError && e.check === 'admission.deadline'
          ? `${e.message} (the registry did not answer in time; policies: ${verdict.policies.join(', ')})`
          : `${req.image}: ${e instanceof Error ? e.message : String(e)}`,
      );
      return verdict;
    }
  }

  async #decide(req: ImageCheck, ref: ImageReference, policies: AnyImagePolicy[], signal: AbortSignal): Promise<Partial<ImageVerdict>> {
    const client = this.#client(req.pullSecrets ?? []);
    const repo = { registry: ref.registry, repository: ref.repository };
    let digest = ref.digest;
    // The image's own manifest, when resolving the tag fetched it (fetchConfigFile reuses it).
    let manifest: FetchedManifest | undefined;
    if (!digest) {
      try {
        ({ digest, manifest } = await resolveImage(client, ref));
      } catch (e) {
        return { errors: [`${req.image}: cannot resolve the tag to a digest: ${e instanceof Error ? e.message : String(e)}`] };
      }
    }
    const decisions: PolicyDecision[] = new Array(policies.length);
    const pending: number[] = [];
    const keys = policies.map((p) => {
      const fp = this.#store.fingerprints.get(policyKey(p)) ?? 'none';
      return `${repo.registry}/${repo.repository}@${digest}|${policyKey(p)}|${fp}`;
    });
    policies.forEach((p, i) => {
      const hit = usesResource(p) && req.resource ? undefined : this.#cacheGet(keys[i]!);
      if (hit) decisions[i] = hit;
      else pending.push(i);
    });
    if (pending.length) {
      const todo = pending.map((i) => policies[i]!);
      const requests = new Map<string, ReturnType<typeof evidenceRequest>>();
      for (const p of todo)
        for (const a of p.spec.authorities) {
          const r = evidenceRequest(a);
          if (r) requests.set(r.key, r);
        }
      const remoteRefs = new Map(remotePolicyRefs(todo).map((r) => [remotePolicyKey(r), r]));
      const [evidence, trust, kms, remote, config] = await Promise.all([
        this.#fetchAll(
          req,
          client,
          repo,
          digest,
          [...requests.values()].filter((r) => r !== undefined),
          signal,
        ),
        this.#trustRootsFor(todo, signal),
        this.#settle(kmsKeyUris(todo), (uri) => this.#kmsKey(uri, signal)),
        this.#settle([...remoteRefs.keys()], (k) => this.#remotePolicy(k, remoteRefs, signal)),
        needsConfigFiles(todo)
          ? fetchConfigFiles(client, repo, digest, manifest).then(
              (c) => ({ config: c }),
              (e: unknown) => ({ configError: `cannot fetch the image config files: ${e instanceof Error ? e.message : String(e)}` }),
            )
          : Promise.resolve({}),
      ]);
      const input: EvaluationInput = {
        // Messages say `<image>@<digest>`: the image as written, without a digest it already carries.
        image: ref.digest ? req.image.slice(0, req.image.lastIndexOf('@')) : req.image,
        digest,
        evidence,
        trustRoots: this.#store.trustRoots,
        fetchedTrustRoots: trust.roots,
        trustRootErrors: trust.errors,
        ...(this.#opts.defaultTrustedRoot ? { defaultTrustedRoot: this.#opts.defaultTrustedRoot } : {}),
        ...(req.resource ? { resource: req.resource } : {}),
        kmsKeys: kms.values,
        kmsErrors: kms.errors,
        remotePolicies: remote.values,
        remotePolicyErrors: remote.errors,
        ...config,
      };
      for (const i of pending) {
        const p = policies[i]!;
        const d = evaluatePolicy(p, input);
        decisions[i] = d;
        // Fetch failures are not facts about the image: never cache them.
        const fetchFailed =
          trust.errors.size > 0 ||
          kms.errors.size > 0 ||
          remote.errors.size > 0 ||
          'configError' in config ||
          p.spec.authorities.some((a) => {
            const r = evidenceRequest(a);
            return r && evidence.get(r.key)?.error !== undefined;
          });
        if (!fetchFailed && !(usesResource(p) && req.resource)) this.#cacheSet(keys[i]!, d);
      }
    }
    const out: Partial<ImageVerdict> = { digest, allowed: true, errors: [], warnings: [] };
    for (const d of decisions) {
      out.errors!.push(...d.errors);
      out.warnings!.push(...d.warnings);
    }
    out.allowed = out.errors!.length === 0;
    return out;
  }

  async #fetchAll(
    req: ImageCheck,
    client: RegistryClient,
    repo: { registry: string; repository: string },
    digest: string,
    requests: NonNullable<ReturnType<typeof evidenceRequest>>[],
    signal: AbortSignal,
  ): Promise<Map<string, Evidence>> {
    const out = new Map<string, Evidence>();
    // One fetcher per check: authorities asking for the same reads share the requests.
    const fetcher = new EvidenceFetcher(this.#referrersMemo, this.#inflightReads);
    // Each signaturePullSecret is read once per check, all at once.
    const secrets = new Map<string, Promise<unknown>>();
    const readSecret = (name: string): Promise<unknown> => {
      let p = secrets.get(name);
      if (!p) {
        p = (async () => this.#opts.readPullSecret!(req.namespace, name, signal))().catch((e: unknown) => {
          this.#opts.onError?.(e);
          return undefined;
        });
        secrets.set(name, p);
      }
      return p;
    };
    await Promise.all(
      requests.map(async (r) => {
        let c = client;
        if (r.signaturePullSecrets.length && this.#opts.readPullSecret) {
          const extra = (await Promise.all(r.signaturePullSecrets.map(readSecret))).filter((s) => s !== undefined);
          // Signature pull secrets first, then the pod's own credentials.
          c = this.#client([...extra, ...(req.pullSecrets ?? [])]);
        }
        out.set(r.key, await fetcher.fetch(c, repo, digest, r));
      }),
    );
    return out;
  }
}
