// Policies from the Kubernetes API, through the official client (@kubernetes/client-node):
// ClusterImagePolicies and TrustRoots (policy.sigstore.dev/v1alpha1) and Waxseal's namespaced
// ImagePolicies (policy.waxseal.dev/v1alpha1) are listed and watched; the Secrets their keys name
// (key.secretRef, keyless.ca-cert.secretRef, in the controller's namespace for cluster policies,
// as policy-controller confines them) and the ConfigMaps their policies name are read and loaded
// beside them. Each policy gets a `Ready` status condition written back (True, or False with the
// validation message); an invalid policy is left out and the others keep working.
//
// Also serves the webhook's lookups: a namespace's labels (the opt-in label), the dockerconfigjson
// pull secrets of a workload (its imagePullSecrets and its service account's) and a named pull
// secret (signaturePullSecrets), each cached briefly.
//
// RBAC this needs: get/list/watch clusterimagepolicies, trustroots, imagepolicies; patch their
// /status; get secrets, configmaps, serviceaccounts and namespaces.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { WaxsealError } from '@waxseal/core';
import { loadPolicyObjects, type PolicyStore, type Workload } from '@waxseal/policy';
import { raceSignal } from './resolve.ts';
import type { PolicySource, SourceStatus } from './sources.ts';

interface Watched {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const WATCHED: readonly Watched[] = [
  { group: 'policy.sigstore.dev', version: 'v1alpha1', plural: 'clusterimagepolicies', kind: 'ClusterImagePolicy', namespaced: false },
  { group: 'policy.sigstore.dev', version: 'v1alpha1', plural: 'trustroots', kind: 'TrustRoot', namespaced: false },
  { group: 'policy.waxseal.dev', version: 'v1alpha1', plural: 'imagepolicies', kind: 'ImagePolicy', namespaced: true },
];

type Obj = KubernetesObject & { spec?: unknown; status?: unknown; data?: Record<string, string>; [k: string]: unknown };

export interface KubeSourceOptions {
  /** Default: the in-cluster service account, or ~/.kube/config (KubeConfig.loadFromDefault). */
  kubeConfig?: KubeConfig;
  /** The controller's namespace, where cluster policies' Secrets live (default $POD_NAMESPACE or waxseal-system). */
  namespace?: string;
  /** Write `Ready` conditions to the policies' status (default true). */
  writeStatus?: boolean;
  /** How often referenced Secrets and ConfigMaps are re-read (default 60 s). */
  resyncMs?: number;
  /** How long namespace, service account and secret lookups are cached (default 30 s). */
  cacheTtlMs?: number;
  /** First delay before re-listing after a failed list or watch, doubled up to 30 s (default 1 s). */
  retryMs?: number;
  /** Server-side timeout of one watch (default 25 s; the client gives up after 30 s of silence). */
  watchTimeoutSeconds?: number;
  log?: (event: 'loaded' | 'error' | 'invalid', detail: string) => void;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keyOf(o: KubernetesObject): string {
  return `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name ?? ''}`;
}

/** The HTTP status of a client-node error (ApiException.code, Watch's statusCode). */
function statusOf(e: unknown): number | undefined {
  if (!isObject(e)) return undefined;
  const c = e.code ?? e.statusCode;
  return typeof c === 'number' ? c : undefined;
}

class TtlCache<V> {
  readonly #m = new Map<string, { v: Promise<V>; until: number }>();
  readonly ttl: number;
  readonly max: number;
  constructor(ttl: number, max = 1000) {
    this.ttl = ttl;
    this.max = max;
  }
  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.#m.get(key);
    if (hit && hit.until > now) return hit.v;
    const v = load();
    this.#m.set(key, { v, until: now + this.ttl });
    // Failures are not cached beyond this call.
    v.catch(() => this.#m.delete(key));
    if (this.#m.size > this.max) this.#m.delete(this.#m.keys().next().value!);
    return v;
  }
}

export class KubeSource implements PolicySource<PolicyStore> {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #o: Required<Omit<KubeSourceOptions, 'kubeConfig' | 'log'>> & Pick<KubeSourceOptions, 'log'>;
  readonly #objects = new Map<string, Map<string, Obj>>(); // plural -> key -> object
  readonly #synced = new Set<string>(); // plurals listed at least once (or absent CRDs)
  readonly #listeners: ((s: PolicyStore) => void)[] = [];
  readonly #aborts = new Set<AbortController>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #written = new Map<string, string>(); // object uid -> last status written
  readonly #nsCache: TtlCache<Record<string, string> | undefined>;
  readonly #secretCache: TtlCache<Obj | undefined>;
  readonly #saCache: TtlCache<string[]>;
  #store: PolicyStore | undefined;
  #status: SourceStatus = { ready: false, loads: 0 };
  #closed = false;
  #rebuildTimer: NodeJS.Timeout | undefined;
  #firstLoad: { resolve: (s: PolicyStore) => void; reject: (e: Error) => void } | undefined;
  /** Status writes in flight (tests wait for them). */
  pendingWrites: Promise<unknown> = Promise.resolve();

  constructor(opts: KubeSourceOptions = {}) {
    this.#kc = opts.kubeConfig ?? KubeSource.defaultConfig();
    this.#core = this.#kc.makeApiClient(CoreV1Api);
    this.#custom = this.#kc.makeApiClient(CustomObjectsApi);
    this.#o = {
      namespace: opts.namespace ?? process.env.POD_NAMESPACE ?? 'waxseal-system',
      writeStatus: opts.writeStatus ?? true,
      resyncMs: opts.resyncMs ?? 60_000,
      cacheTtlMs: opts.cacheTtlMs ?? 30_000,
      retryMs: opts.retryMs ?? 1000,
      watchTimeoutSeconds: opts.watchTimeoutSeconds ?? 25,
      log: opts.log,
    };
    this.#nsCache = new TtlCache(this.#o.cacheTtlMs);
    this.#secretCache = new TtlCache(this.#o.cacheTtlMs);
    this.#saCache = new TtlCache(this.#o.cacheTtlMs);
    for (const w of WATCHED) this.#objects.set(w.plural, new Map());
  }

  static defaultConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return kc;
  }

  /** Resolves with the first store once every resource has been listed; rejects if the first attempt fails (retries go on). */
  start(): Promise<PolicyStore> {
    const first = new Promise<PolicyStore>((resolve, reject) => (this.#firstLoad = { resolve, reject }));
    for (const w of WATCHED) void this.#listAndWatch(w, this.#o.retryMs);
    if (this.#o.resyncMs > 0) {
      const t = setInterval(() => this.#scheduleRebuild(), this.#o.resyncMs);
      t.unref();
      this.#timers.add(t);
    }
    return first;
  }

  #path(w: Watched): string {
    return `/apis/${w.group}/${w.version}/${w.plural}`;
  }

  async #listAndWatch(w: Watched, delay: number): Promise<void> {
    if (this.#closed) return;
    let rv: string;
    try {
      const list = (await this.#custom.listClusterCustomObject({ group: w.group, version: w.version, plural: w.plural })) as {
        items?: Obj[];
        metadata?: { resourceVersion?: string };
      };
      const m = new Map<string, Obj>();
      for (const it of list.items ?? [])
        m.set(keyOf({ ...it, kind: w.kind }), { ...it, kind: w.kind, apiVersion: `${w.group}/${w.version}` });
      this.#objects.set(w.plural, m);
      this.#synced.add(w.plural);
      rv = list.metadata?.resourceVersion ?? '';
      this.#scheduleRebuild();
    } catch (e) {
      if (statusOf(e) === 404) {
        // The CRD is not installed (e.g. no ImagePolicy CRD): nothing of this kind; look again later.
        this.#objects.set(w.plural, new Map());
        this.#synced.add(w.plural);
        this.#scheduleRebuild();
        this.#later(() => this.#listAndWatch(w, this.#o.retryMs), Math.max(this.#o.resyncMs, 1000));
        return;
      }
      const msg = `listing ${w.plural} failed: ${(e as Error).message}`;
      this.#fail(msg);
      this.#later(() => this.#listAndWatch(w, Math.min(delay * 2, 30_000)), delay);
      return;
    }
    this.#watch(w, rv);
  }

  #watch(w: Watched, rv: string): void {
    if (this.#closed) return;
    let current = rv;
    const watch = new Watch(this.#kc);
    const params = { resourceVersion: current, allowWatchBookmarks: true, timeoutSeconds: this.#o.watchTimeoutSeconds };
    void watch
      .watch(
        this.#path(w),
        params,
        (type, obj: Obj) => {
          const v = obj?.metadata?.resourceVersion;
          if (v) current = v;
          if (type === 'BOOKMARK' || !isObject(obj)) return;
          if (type === 'ERROR') {
            // A watch that fell too far behind (410 Gone): list again.
            current = '';
            return;
          }
          const o: Obj = { ...obj, kind: w.kind, apiVersion: `${w.group}/${w.version}` };
          const m = this.#objects.get(w.plural)!;
          if (type === 'DELETED') m.delete(keyOf(o));
          else m.set(keyOf(o), o);
          this.#scheduleRebuild();
        },
        (err: unknown) => {
          if (this.#closed) return;
          if (err && statusOf(err) !== undefined) this.#o.log?.('error', `watching ${w.plural}: ${(err as Error).message}`);
          // A normal end (server timeout) watches on from where it was; anything else lists again.
          if (!err && current) this.#watch(w, current);
          else this.#later(() => this.#listAndWatch(w, this.#o.retryMs), this.#o.retryMs);
        },
      )
      .then((ac) => {
        if (this.#closed) ac.abort();
        else this.#aborts.add(ac);
      });
  }

  #later(fn: () => void, ms: number): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  #fail(msg: string): void {
    if (this.#status.error !== msg) this.#o.log?.('error', msg);
    this.#status = { ...this.#status, error: msg };
    if (this.#firstLoad && !this.#store) {
      this.#firstLoad.reject(new WaxsealError('ERR_UNAVAILABLE', msg));
      this.#firstLoad = undefined;
    }
  }

  #scheduleRebuild(): void {
    if (this.#closed) return;
    clearTimeout(this.#rebuildTimer);
    this.#rebuildTimer = setTimeout(() => void this.rebuild(), 50);
    this.#rebuildTimer.unref();
  }

  /** The Secrets and ConfigMaps the policies name, read from the API. */
  async #sideObjects(policies: Obj[]): Promise<Obj[]> {
    const wanted = new Map<string, { kind: 'Secret' | 'ConfigMap'; namespace: string; name: string }>();
    for (const p of policies) {
      const spec = isObject(p.spec) ? p.spec : {};
      const ns = p.kind === 'ImagePolicy' ? (p.metadata?.namespace ?? this.#o.namespace) : this.#o.namespace;
      const auths = Array.isArray(spec.authorities) ? spec.authorities : [];
      for (const a of auths) {
        if (!isObject(a)) continue;
        const refs = [
          isObject(a.key) ? a.key.secretRef : undefined,
          isObject(a.keyless) && isObject(a.keyless['ca-cert']) ? a.keyless['ca-cert'].secretRef : undefined,
        ];
        for (const r of refs) {
          if (isObject(r) && typeof r.name === 'string')
            wanted.set(`Secret/${ns}/${r.name}`, { kind: 'Secret', namespace: ns, name: r.name });
        }
      }
      const cm = isObject(spec.policy) && isObject(spec.policy.configMapRef) ? spec.policy.configMapRef : undefined;
      if (cm && typeof cm.name === 'string') {
        const cns = typeof cm.namespace === 'string' && cm.namespace ? cm.namespace : ns;
        wanted.set(`ConfigMap/${cns}/${cm.name}`, { kind: 'ConfigMap', namespace: cns, name: cm.name });
      }
    }
    const out: Obj[] = [];
    await Promise.all(
      [...wanted.values()].map(async (w) => {
        try {
          const o =
            w.kind === 'Secret'
              ? await this.#core.readNamespacedSecret({ name: w.name, namespace: w.namespace })
              : await this.#core.readNamespacedConfigMap({ name: w.name, namespace: w.namespace });
          out.push({
            apiVersion: 'v1',
            kind: w.kind,
            metadata: { name: w.name, namespace: w.namespace },
            data: (o as { data?: Record<string, string> }).data ?? {},
          });
        } catch (e) {
          // Missing: the policy that names it fails validation and says so in its status.
          if (statusOf(e) !== 404) this.#o.log?.('error', `reading ${w.kind} ${w.namespace}/${w.name}: ${(e as Error).message}`);
        }
      }),
    );
    return out;
  }

  /** Rebuilds the store from the objects seen so far (once every kind has been listed). */
  async rebuild(): Promise<PolicyStore | undefined> {
    if (this.#closed || this.#synced.size < WATCHED.length) return undefined;
    const all = [...this.#objects.values()].flatMap((m) => [...m.values()]);
    const policies = all.filter((o) => o.kind !== 'TrustRoot');
    const trustRoots = all.filter((o) => o.kind === 'TrustRoot');
    const side = await this.#sideObjects(policies);
    const clean = (o: Obj): Obj => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata, spec: o.spec }) as Obj;
    const verdicts = new Map<Obj, string | undefined>();
    let store: PolicyStore;
    try {
      store = loadPolicyObjects([...side, ...all.map(clean)]);
      for (const o of all) verdicts.set(o, undefined);
    } catch {
      // Find the culprits one by one; the rest load without them.
      const good: Obj[] = [];
      for (const o of all) {
        try {
          loadPolicyObjects([...side, ...(o.kind === 'TrustRoot' ? [] : trustRoots.map(clean)), clean(o)]);
          verdicts.set(o, undefined);
          good.push(o);
        } catch (e) {
          verdicts.set(o, (e as Error).message);
          this.#o.log?.('invalid', `${keyOf(o)}: ${(e as Error).message}`);
        }
      }
      try {
        store = loadPolicyObjects([...side, ...good.map(clean)]);
      } catch (e) {
        this.#fail(`policies do not load together: ${(e as Error).message}`);
        return undefined;
      }
    }
    const changed = store.generation !== this.#store?.generation;
    this.#store = store;
    this.#status = { ready: true, generation: store.generation, loadedAt: new Date(), loads: this.#status.loads + 1 };
    if (this.#firstLoad) {
      this.#firstLoad.resolve(store);
      this.#firstLoad = undefined;
    }
    if (changed) {
      this.#o.log?.(
        'loaded',
        `${store.clusterPolicies.length} ClusterImagePolicies, ${store.imagePolicies.length} ImagePolicies, ${store.trustRoots.size} TrustRoots`,
      );
      for (const l of this.#listeners) l(store);
    }
    if (this.#o.writeStatus) this.pendingWrites = Promise.all([...verdicts].map(([o, err]) => this.#writeStatus(o, err)));
    return store;
  }

  async #writeStatus(o: Obj, error: string | undefined): Promise<void> {
    const uid = o.metadata?.uid ?? keyOf(o);
    const generation = o.metadata?.generation;
    const memo = JSON.stringify([generation, error ?? null]);
    if (this.#written.get(uid) === memo) return;
    const ready =
      isObject(o.status) && Array.isArray(o.status.conditions)
        ? o.status.conditions.find((c) => isObject(c) && c.type === 'Ready')
        : undefined;
    const want = error ? 'False' : 'True';
    const message = error ?? 'loaded by the waxseal admission webhook';
    // Already recorded (by us before a restart, or another replica): leave it.
    if (
      isObject(ready) &&
      ready.status === want &&
      ready.message === message &&
      (isObject(o.status) ? o.status.observedGeneration : undefined) === generation
    ) {
      this.#written.set(uid, memo);
      return;
    }
    const body = {
      status: {
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
        conditions: [
          {
            type: 'Ready',
            status: want,
            reason: error ? 'InvalidPolicy' : 'Loaded',
            message: message.slice(0, 32_768),
            lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          },
        ],
      },
    };
    const w = WATCHED.find((x) => x.kind === o.kind)!;
    const name = o.metadata?.name ?? '';
    const opts = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    try {
      if (w.namespaced) {
        await this.#custom.patchNamespacedCustomObjectStatus(
          { group: w.group, version: w.version, plural: w.plural, namespace: o.metadata?.namespace ?? '', name, body },
          opts,
        );
      } else {
        await this.#custom.patchClusterCustomObjectStatus({ group: w.group, version: w.version, plural: w.plural, name, body }, opts);
      }
      this.#written.set(uid, memo);
    } catch (e) {
      // Another replica may have written it; the next rebuild tries again if not.
      this.#o.log?.('error', `writing the status of ${keyOf(o)}: ${(e as Error).message}`);
    }
  }

  current(): PolicyStore | undefined {
    return this.#store;
  }

  onChange(listener: (store: PolicyStore) => void): void {
    this.#listeners.push(listener);
  }

  status(): SourceStatus {
    return { ...this.#status };
  }

  /** A namespace's labels; undefined when it does not exist. */
  namespaceLabels = (namespace: string, signal: AbortSignal): Promise<Record<string, string> | undefined> =>
    raceSignal(
      this.#nsCache.get(namespace, async () => {
        try {
          const ns = await this.#core.readNamespace({ name: namespace });
          return { ...(ns.metadata?.labels ?? {}) };
        } catch (e) {
          if (statusOf(e) === 404) return undefined;
          throw new WaxsealError('ERR_UNAVAILABLE', `reading namespace ${namespace}: ${(e as Error).message}`);
        }
      }),
      signal,
      `reading namespace ${namespace}`,
    );

  async #secret(namespace: string, name: string): Promise<Obj | undefined> {
    return this.#secretCache.get(`${namespace}/${name}`, async () => {
      try {
        return (await this.#core.readNamespacedSecret({ name, namespace })) as Obj;
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        throw new WaxsealError('ERR_UNAVAILABLE', `reading secret ${namespace}/${name}: ${(e as Error).message}`);
      }
    });
  }

  /** The decoded docker config of a pull secret (kubernetes.io/dockerconfigjson or dockercfg), or undefined. */
  readPullSecret = async (namespace: string, name: string, signal: AbortSignal): Promise<unknown | undefined> => {
    const s = await raceSignal(this.#secret(namespace, name), signal, `reading secret ${namespace}/${name}`);
    const data = s?.data ?? {};
    const raw = data['.dockerconfigjson'] ?? data['.dockercfg'];
    if (!raw) return undefined;
    try {
      return JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
    } catch {
      return undefined;
    }
  };

  /** The pull secrets of a workload: its pod spec's imagePullSecrets, then its service account's. */
  pullSecrets = async (w: Workload, signal: AbortSignal): Promise<unknown[]> => {
    const saSecrets = await raceSignal(
      this.#saCache.get(`${w.namespace}/${w.serviceAccountName}`, async () => {
        try {
          const sa = await this.#core.readNamespacedServiceAccount({ name: w.serviceAccountName, namespace: w.namespace });
          return (sa.imagePullSecrets ?? []).flatMap((r) => (r.name ? [r.name] : []));
        } catch (e) {
          if (statusOf(e) === 404) return [];
          throw new WaxsealError(
            'ERR_UNAVAILABLE',
            `reading service account ${w.namespace}/${w.serviceAccountName}: ${(e as Error).message}`,
          );
        }
      }),
      signal,
      'reading the service account',
    );
    const names = [...new Set([...w.imagePullSecrets, ...saSecrets])];
    const out = await Promise.all(names.map((n) => this.readPullSecret(w.namespace, n, signal)));
    return out.filter((x) => x !== undefined);
  };

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#rebuildTimer);
    for (const t of this.#timers) clearTimeout(t);
    for (const a of this.#aborts) a.abort();
    await this.pendingWrites.catch(() => {});
  }
}
