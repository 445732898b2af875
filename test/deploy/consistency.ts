// The invariants that tie the deployment's objects together: what the webhook configurations
// call is what the Service exposes and the container serves, the container runs the CLI with
// flags the CLI has, the RBAC covers what the webhook reads and writes, and the availability and
// hardening settings hold. One function, applied to the plain manifests, the overlays and every
// chart rendering.
import type { Json, Obj } from './k8s.ts';

/** `waxseal admission serve`'s flags: name -> takes a value (and its allowed values, if fixed). */
export const CLI_FLAGS: Record<string, { value: boolean; allowed?: string[] }> = {
  '--policy-dir': { value: true },
  '--tls-cert': { value: true },
  '--tls-key': { value: true },
  '--port': { value: true },
  '--no-match': { value: true, allowed: ['deny', 'allow', 'warn'] },
  '--deadline': { value: true },
  '--kube': { value: false },
};
export const ENDPOINTS = { validate: '/validate', mutate: '/mutate', healthz: '/healthz', readyz: '/readyz' };
/** The kinds the webhook reviews (policy-controller's seven), as webhook rule resources. */
export const REVIEWED = {
  '': ['pods', 'pods/ephemeralcontainers'],
  apps: ['deployments', 'replicasets', 'statefulsets', 'daemonsets'],
  batch: ['jobs', 'cronjobs'],
};

export interface Expect {
  namespace: string;
  replicas: number;
  timeoutSeconds: number;
  failurePolicy: string;
  namespaceLabel: string;
  namespaceLabelValue: string;
  /** 'kube' or the mounted ConfigMap's name. */
  policies: 'kube' | { configMap: string };
}

export const DEFAULTS: Expect = {
  namespace: 'waxseal-system',
  replicas: 2,
  timeoutSeconds: 10,
  failurePolicy: 'Fail',
  namespaceLabel: 'policy.sigstore.dev/include',
  namespaceLabelValue: 'true',
  policies: 'kube',
};

type O = Record<string, any>;

/** Parses a deadline the way the deployment writes it: <n>ms or <n>s. */
export function deadlineMs(d: string): number {
  const m = /^(\d+)(ms|s)$/.exec(d);
  if (!m) throw new Error(`deadline ${d}: not <n>ms or <n>s`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/** Splits `waxseal admission serve` argv into flags; reports unknown flags and bad values. */
export function parseServeArgs(argv: string[], errors: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  if (argv[0] !== 'waxseal' || argv[1] !== 'admission' || argv[2] !== 'serve')
    errors.push(`runs ${argv.slice(0, 3).join(' ')}, not waxseal admission serve`);
  for (let i = 3; i < argv.length; i++) {
    const f = argv[i]!;
    const spec = CLI_FLAGS[f];
    if (!spec) {
      errors.push(`unknown flag ${f}`);
      continue;
    }
    if (flags.has(f)) errors.push(`${f} given twice`);
    if (!spec.value) {
      flags.set(f, true);
      continue;
    }
    const v = argv[++i];
    if (v === undefined || v.startsWith('--')) errors.push(`${f} without a value`);
    else if (spec.allowed && !spec.allowed.includes(v)) errors.push(`${f} ${v}: not one of ${spec.allowed.join(', ')}`);
    else flags.set(f, v);
  }
  return flags;
}

const one = (objs: Obj[], kind: string, errors: string[]): O | undefined => {
  const found = objs.filter((o) => o['kind'] === kind);
  if (found.length !== 1) errors.push(`expected one ${kind}, found ${found.length}`);
  return found[0] as O | undefined;
};

const matches = (selector: O | undefined, labels: O | undefined): boolean =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

export function deploymentErrors(objs: Obj[], expect: Expect = DEFAULTS): string[] {
  const errors: string[] = [];
  const dep = one(objs, 'Deployment', errors);
  const svc = one(objs, 'Service', errors);
  const pdb = one(objs, 'PodDisruptionBudget', errors);
  const sa = one(objs, 'ServiceAccount', errors);
  const vwc = one(objs, 'ValidatingWebhookConfiguration', errors);
  const mwc = one(objs, 'MutatingWebhookConfiguration', errors);
  if (!dep || !svc || !pdb || !sa || !vwc || !mwc) return errors;

  for (const o of [dep, svc, pdb, sa])
    if (o['metadata'].namespace !== expect.namespace) errors.push(`${o['kind']} not in ${expect.namespace}`);

  // The Deployment: replicas, the pod, the container and its arguments.
  if (dep['spec'].replicas !== expect.replicas) errors.push(`replicas ${dep['spec'].replicas}`);
  const pod = dep['spec'].template;
  if (!matches(dep['spec'].selector?.matchLabels, pod.metadata?.labels)) errors.push('the Deployment selector does not select its pods');
  if (pod.spec.serviceAccountName !== sa['metadata'].name) errors.push('the pods do not run as the ServiceAccount');
  if (pod.spec.securityContext?.runAsNonRoot !== true) errors.push('pods may run as root');
  if (pod.spec.containers.length !== 1) errors.push('expected one container');
  const c = pod.spec.containers[0] as O;
  const sc = c['securityContext'] ?? {};
  if (sc.readOnlyRootFilesystem !== true) errors.push('root filesystem writable');
  if (sc.allowPrivilegeEscalation !== false) errors.push('privilege escalation allowed');
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) errors.push('capabilities not dropped');
  if (!c['resources']?.requests?.cpu || !c['resources']?.requests?.memory) errors.push('no resource requests');

  const argv = [...(c['command'] ?? []), ...(c['args'] ?? [])].map(String);
  const flags = parseServeArgs(argv, errors);
  for (const f of ['--tls-cert', '--tls-key', '--port', '--deadline']) if (!flags.has(f)) errors.push(`${f} missing`);
  if (flags.has('--kube') === flags.has('--policy-dir')) errors.push('exactly one of --kube and --policy-dir expected');
  if (expect.policies === 'kube' && !flags.has('--kube')) errors.push('expected --kube');
  if (expect.policies !== 'kube' && !flags.has('--policy-dir')) errors.push('expected --policy-dir');

  // Files the flags name are on volumes: the TLS pair from a Secret, the policies from the ConfigMap.
  const volumeOf = (path: string): O | undefined => {
    const mount = (c['volumeMounts'] ?? []).find((m: O) => path === m['mountPath'] || path.startsWith(`${m['mountPath']}/`));
    return mount && (pod.spec.volumes ?? []).find((v: O) => v['name'] === mount.name);
  };
  for (const f of ['--tls-cert', '--tls-key']) {
    const v = flags.get(f);
    if (typeof v === 'string' && !volumeOf(v)?.['secret']?.secretName) errors.push(`${f} ${v} is not on a Secret volume`);
  }
  const dir = flags.get('--policy-dir');
  if (typeof dir === 'string') {
    const vol = volumeOf(dir);
    if (!vol?.['configMap']) errors.push(`--policy-dir ${dir} is not a ConfigMap volume`);
    else if (expect.policies !== 'kube' && vol['configMap'].name !== expect.policies.configMap)
      errors.push('--policy-dir mounts another ConfigMap');
  }
  for (const m of c['volumeMounts'] ?? [])
    if (!(pod.spec.volumes ?? []).some((v: O) => v['name'] === m.name)) errors.push(`mount ${m.name} has no volume`);

  // The port: --port = the named container port = the Service's targetPort = the webhooks' port.
  const port = Number(flags.get('--port'));
  const cport = (c['ports'] ?? []).find((p: O) => p['containerPort'] === port);
  if (!cport) errors.push(`--port ${port} is not a container port`);
  if (!matches(svc['spec'].selector, pod.metadata?.labels)) errors.push('the Service does not select the pods');
  if (!matches(pdb['spec'].selector?.matchLabels, pod.metadata?.labels)) errors.push('the PodDisruptionBudget does not select the pods');
  if (!(Number(pdb['spec'].minAvailable) >= 1 && Number(pdb['spec'].minAvailable) < expect.replicas))
    errors.push('minAvailable must keep one pod and allow a drain');

  // Probes on the same server.
  for (const [probe, path] of [
    ['readinessProbe', ENDPOINTS.readyz],
    ['livenessProbe', ENDPOINTS.healthz],
  ] as const) {
    const g = c[probe]?.httpGet;
    if (g?.path !== path) errors.push(`${probe} path ${g?.path}, expected ${path}`);
    if (g?.scheme !== 'HTTPS') errors.push(`${probe} is not HTTPS (the server speaks TLS only)`);
    if (g?.port !== cport?.name && g?.port !== port) errors.push(`${probe} port ${g?.port} is not the server's`);
  }

  // The deadline leaves the API server's timeout room.
  const deadline = flags.get('--deadline');
  if (typeof deadline === 'string' && !(deadlineMs(deadline) < expect.timeoutSeconds * 1000)) {
    errors.push(`--deadline ${deadline} is not below timeoutSeconds ${expect.timeoutSeconds}`);
  }

  // The webhooks.
  for (const [cfg, path, mutating] of [
    [vwc, ENDPOINTS.validate, false],
    [mwc, ENDPOINTS.mutate, true],
  ] as const) {
    const what = cfg['kind'];
    if (cfg['webhooks']?.length !== 1) {
      errors.push(`${what}: expected one webhook`);
      continue;
    }
    const w = cfg['webhooks'][0] as O;
    const s = w['clientConfig']?.service;
    if (s?.name !== svc['metadata'].name || s?.namespace !== svc['metadata'].namespace)
      errors.push(`${what} calls ${s?.namespace}/${s?.name}`);
    if (s?.path !== path) errors.push(`${what} path ${s?.path}, expected ${path}`);
    const sport = (svc['spec'].ports as O[]).find((p) => p['port'] === (s?.port ?? 443));
    if (!sport) errors.push(`${what} port ${s?.port} is not a Service port`);
    else if (sport['targetPort'] !== cport?.name && sport['targetPort'] !== port)
      errors.push(`${what}: the Service port does not reach --port`);
    if (w['failurePolicy'] !== expect.failurePolicy) errors.push(`${what} failurePolicy ${w['failurePolicy']}`);
    if (w['timeoutSeconds'] !== expect.timeoutSeconds) errors.push(`${what} timeoutSeconds ${w['timeoutSeconds']}`);
    if (w['sideEffects'] !== 'None') errors.push(`${what} sideEffects ${w['sideEffects']}`);
    if (JSON.stringify(w['admissionReviewVersions']) !== '["v1"]') errors.push(`${what} admissionReviewVersions`);
    if (mutating && w['reinvocationPolicy'] !== 'IfNeeded') errors.push(`${what} reinvocationPolicy ${w['reinvocationPolicy']}`);
    const sel = JSON.stringify(w['namespaceSelector']);
    const want = JSON.stringify({
      matchExpressions: [{ key: expect.namespaceLabel, operator: 'In', values: [expect.namespaceLabelValue] }],
    });
    if (sel !== want) errors.push(`${what} namespaceSelector ${sel}`);
    const seen: Record<string, string[]> = {};
    for (const r of w['rules'] as O[]) {
      if (JSON.stringify(r['operations']) !== '["CREATE","UPDATE"]') errors.push(`${what}: rule operations ${r['operations']}`);
      if (JSON.stringify(r['apiVersions']) !== '["v1"]') errors.push(`${what}: rule apiVersions ${r['apiVersions']}`);
      for (const g of r['apiGroups']) (seen[g] ??= []).push(...r['resources']);
    }
    if (JSON.stringify(seen) !== JSON.stringify(REVIEWED)) errors.push(`${what} reviews ${JSON.stringify(seen)}`);
  }

  // RBAC: what the webhook reads and writes, bound to its ServiceAccount.
  const granted = (kind: string, ns?: string): Set<string> => {
    const set = new Set<string>();
    for (const role of objs.filter((o) => o['kind'] === kind && (ns === undefined || (o['metadata'] as O)['namespace'] === ns))) {
      const bound = objs.some(
        (b) =>
          b['kind'] === `${kind}Binding` &&
          (b['roleRef'] as O)['name'] === (role['metadata'] as O)['name'] &&
          ((b['subjects'] ?? []) as O[]).some(
            (s) => s['kind'] === 'ServiceAccount' && s['name'] === sa['metadata'].name && s['namespace'] === expect.namespace,
          ),
      );
      if (!bound) continue;
      for (const r of (role['rules'] ?? []) as O[])
        for (const g of r['apiGroups']) for (const res of r['resources']) for (const v of r['verbs']) set.add(`${g}/${res}/${v}`);
    }
    return set;
  };
  const cluster = granted('ClusterRole');
  const needs: [string, string[]][] = [
    ['policy.sigstore.dev/clusterimagepolicies', ['get', 'list', 'watch']],
    ['policy.sigstore.dev/trustroots', ['get', 'list', 'watch']],
    ['policy.waxseal.dev/imagepolicies', ['get', 'list', 'watch']],
    ['policy.sigstore.dev/clusterimagepolicies/status', ['update', 'patch']],
    ['policy.sigstore.dev/trustroots/status', ['update', 'patch']],
    ['policy.waxseal.dev/imagepolicies/status', ['update', 'patch']],
    ['/secrets', ['get']],
    ['/configmaps', ['get']],
    ['/serviceaccounts', ['get']],
  ];
  for (const [res, verbs] of needs) for (const v of verbs) if (!cluster.has(`${res}/${v}`)) errors.push(`RBAC: ${v} ${res} not granted`);
  for (const g of cluster) if (/^\/(secrets|configmaps)\/(?!get$)/.test(g)) errors.push(`RBAC: cluster-wide ${g}: only get is needed`);
  return errors;
}

/** Objects minus the labels only Helm adds, for comparing a rendering with the plain manifests. */
export function withoutHelmLabels(o: Json): Json {
  if (Array.isArray(o)) return o.map(withoutHelmLabels);
  if (o === null || typeof o !== 'object') return o;
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'app.kubernetes.io/instance' || k === 'app.kubernetes.io/version' || k === 'helm.sh/chart') continue;
    out[k] = withoutHelmLabels(v);
  }
  return out;
}
