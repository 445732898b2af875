// The policy store: every ClusterImagePolicy, ImagePolicy and TrustRoot the webhook enforces,
// loaded from YAML files (a mounted ConfigMap directory) or from objects the Kubernetes API
// returned. Kinds are routed by apiVersion + kind:
//   policy.sigstore.dev/v1alpha1|v1beta1 ClusterImagePolicy, policy.sigstore.dev/v1alpha1 TrustRoot,
//   policy.waxseal.dev/v1alpha1 ImagePolicy (namespaced), v1 Secret (public keys for key.secretRef),
//   v1 ConfigMap (policies for configMapRef), and v1 List (its items).
// Any other kind is refused, naming the file, as policy-controller's policy-tester refuses
// unknown types: a typo in apiVersion must not silently drop a policy. The whole load fails on
// the first bad document, so a webhook keeps serving its previous store instead of half a new one.
import { sha256, toHex, utf8, fromBase64, fromUtf8, WaxsealError } from '@waxseal/core';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import {
  parseClusterImagePolicy,
  parseImagePolicy,
  parseTrustRoot,
  POLICY_GROUP,
  WAXSEAL_POLICY_GROUP,
  type AnyImagePolicy,
  type ClusterImagePolicy,
  type ImagePolicy,
  type ResourceContext,
  type TrustRoot,
} from './resources.ts';

export interface PolicyDocument {
  /** A file name (for messages). */
  name: string;
  /** YAML, possibly several documents separated by `---`. */
  text: string;
}

export interface PolicyStore {
  clusterPolicies: ClusterImagePolicy[];
  imagePolicies: ImagePolicy[];
  trustRoots: Map<string, TrustRoot>;
  /** Changes whenever any input changes (a hash of the inputs). */
  generation: string;
  /**
   * Per policy (`ClusterImagePolicy/<name>` or `ImagePolicy/<ns>/<name>`): a hash of the policy
   * and of the TrustRoots it references, for cache keys that survive edits to unrelated policies.
   */
  fingerprints: Map<string, string>;
  /** Not fatal: references to TrustRoots that are not loaded (those authorities fail until they are). */
  warnings: string[];
}

/** Largest policy file read. */
export const MAX_POLICY_DOCUMENT_BYTES = 4 << 20;
/** Most resources in one store. */
export const MAX_POLICY_OBJECTS = 10_000;

export function policyKey(p: AnyImagePolicy): string {
  return p.kind === 'ClusterImagePolicy' ? `ClusterImagePolicy/${p.name}` : `ImagePolicy/${p.namespace}/${p.name}`;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(msg: string): never {
  throw new WaxsealError('ERR_INVALID_INPUT', msg, { check: 'policy.resource' });
}

/** Stable JSON (sorted keys) of what matters for a decision: not status, not managedFields. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => v[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function essence(o: Json): Json {
  const m = isObject(o.metadata) ? o.metadata : {};
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: m.name,
    namespace: m.namespace,
    spec: o.spec,
    data: o.data,
    stringData: o.stringData,
  };
}

const hash = (s: string) => toHex(sha256(utf8(s))).slice(0, 32);

interface Located {
  obj: Json;
  where: string;
}

function flatten(v: unknown, where: string, out: Located[]): void {
  if (v === null || v === undefined) return; // an empty document
  if (!isObject(v)) bad(`${where}: a resource must be a YAML mapping, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  if (v.apiVersion === 'v1' && v.kind === 'List') {
    if (!Array.isArray(v.items)) bad(`${where}: List has no items`);
    v.items.forEach((it, i) => flatten(it, `${where} items[${i}]`, out));
    return;
  }
  out.push({ obj: v, where });
  if (out.length > MAX_POLICY_OBJECTS) bad(`more than ${MAX_POLICY_OBJECTS} resources`);
}

function kindOf(o: Json): string {
  return `${String(o.apiVersion ?? '(no apiVersion)')} ${String(o.kind ?? '(no kind)')}`;
}

function metaName(o: Json): { name?: string; namespace?: string } {
  const m = isObject(o.metadata) ? o.metadata : {};
  return {
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
    ...(typeof m.namespace === 'string' ? { namespace: m.namespace } : {}),
  };
}

function build(items: Located[], generation: string): PolicyStore {
  // Secrets and ConfigMaps first: policies resolve secretRef and configMapRef against them.
  const secrets = new Map<string, Record<string, string>>();
  const configMaps = new Map<string, Record<string, string>>();
  const routed: { kind: 'cip' | 'ip' | 'tr'; item: Located }[] = [];
  for (const item of items) {
    const { obj: o, where } = item;
    const group = typeof o.apiVersion === 'string' ? o.apiVersion.split('/')[0] : '';
    const { name, namespace } = metaName(o);
    if (o.apiVersion === 'v1' && (o.kind === 'Secret' || o.kind === 'ConfigMap')) {
      if (!name) bad(`${where}: ${o.kind} without metadata.name`);
      const data: Record<string, string> = {};
      const raw = isObject(o.data) ? o.data : {};
      for (const [k, val] of Object.entries(raw)) {
        if (typeof val !== 'string') bad(`${where}: ${o.kind} ${name}: data.${k} must be a string`);
        try {
          data[k] = o.kind === 'Secret' ? fromUtf8(fromBase64(val.replace(/\s+/g, ''), `data.${k}`)) : val;
        } catch {
          bad(`${where}: Secret ${name}: data.${k} is not base64 text`);
        }
      }
      if (o.kind === 'Secret' && isObject(o.stringData))
        for (const [k, val] of Object.entries(o.stringData)) if (typeof val === 'string') data[k] = val;
      const map = o.kind === 'Secret' ? secrets : configMaps;
      map.set(`${namespace ?? ''}/${name}`, data);
      if (!map.has(`*/${name}`)) map.set(`*/${name}`, data);
      continue;
    }
    if (group === POLICY_GROUP && o.kind === 'ClusterImagePolicy') routed.push({ kind: 'cip', item });
    else if (group === POLICY_GROUP && o.kind === 'TrustRoot') routed.push({ kind: 'tr', item });
    else if (group === WAXSEAL_POLICY_GROUP && o.kind === 'ImagePolicy') routed.push({ kind: 'ip', item });
    else {
      bad(
        `${where}: unknown resource type ${kindOf(o)}${name ? ` (${name})` : ''}: expected ${POLICY_GROUP} ClusterImagePolicy or TrustRoot, ` +
          `${WAXSEAL_POLICY_GROUP}/v1alpha1 ImagePolicy, or a v1 Secret, ConfigMap or List`,
      );
    }
  }
  const lookup = (map: Map<string, Record<string, string>>) => (name: string, namespace: string | undefined) =>
    map.get(`${namespace ?? ''}/${name}`) ?? (namespace ? undefined : map.get(`*/${name}`));
  const ctx: ResourceContext = { secret: lookup(secrets), configMap: lookup(configMaps) };

  const store: PolicyStore = {
    clusterPolicies: [],
    imagePolicies: [],
    trustRoots: new Map(),
    generation,
    fingerprints: new Map(),
    warnings: [],
  };
  const seen = new Map<string, string>();
  const essences = new Map<string, string>();
  for (const { kind, item } of routed) {
    const r =
      kind === 'cip'
        ? parseClusterImagePolicy(item.obj, item.where, ctx)
        : kind === 'ip'
          ? parseImagePolicy(item.obj, item.where, ctx)
          : parseTrustRoot(item.obj, item.where);
    const key = r.kind === 'TrustRoot' ? `TrustRoot/${r.name}` : policyKey(r);
    const before = seen.get(key);
    if (before)
      bad(`${item.where}: duplicate ${key.split('/').slice(0, -1).join(' ')} named ${JSON.stringify(r.name)} (also in ${before})`);
    seen.set(key, item.where);
    essences.set(key, canonical(essence(item.obj)));
    if (r.kind === 'TrustRoot') store.trustRoots.set(r.name, r);
    else if (r.kind === 'ClusterImagePolicy') store.clusterPolicies.push(r);
    else store.imagePolicies.push(r);
  }
  // Secrets and ConfigMaps a policy reads are part of it: hash them all in (small, rarely many).
  const side = canonical([...secrets.entries(), ...configMaps.entries()]);
  for (const p of [...store.clusterPolicies, ...store.imagePolicies]) {
    const refs = new Set<string>();
    for (const a of p.spec.authorities) {
      for (const r of [a.keyless?.trustRootRef, a.ctlog?.trustRootRef, a.rfc3161timestamp?.trustRootRef]) if (r) refs.add(r);
    }
    const parts = [essences.get(policyKey(p))!, side];
    for (const r of [...refs].sort()) {
      const tr = essences.get(`TrustRoot/${r}`);
      if (!tr) store.warnings.push(`${policyKey(p)}: trustRootRef ${JSON.stringify(r)} names no loaded TrustRoot`);
      parts.push(tr ?? `missing:${r}`);
    }
    store.fingerprints.set(policyKey(p), hash(parts.join('\n')));
  }
  // Deterministic order, whatever order the files were listed in.
  store.clusterPolicies.sort((a, b) => a.name.localeCompare(b.name));
  store.imagePolicies.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return store;
}

/**
 * Loads YAML documents (each possibly multi-document). Throws WaxsealError ERR_INVALID_INPUT
 * (check 'policy.resource') naming the file, the resource and the field.
 */
export function loadPolicyStore(docs: PolicyDocument[]): PolicyStore {
  const items: Located[] = [];
  const sorted = [...docs].sort((a, b) => a.name.localeCompare(b.name));
  for (const d of sorted) {
    if (d.text.length > MAX_POLICY_DOCUMENT_BYTES) bad(`${d.name}: larger than ${MAX_POLICY_DOCUMENT_BYTES} bytes`);
    const parsed = parseAllDocuments(d.text, { uniqueKeys: true });
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((doc, i) => {
      const where = list.length > 1 ? `${d.name} (document ${i + 1})` : d.name;
      if (doc.errors.length) bad(`${where}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        bad(`${where}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
      }
      flatten(value, where, items);
    });
  }
  const generation = hash(canonical(sorted.map((d) => [d.name, d.text])));
  return build(items, generation);
}

/** Loads already-parsed objects (from the Kubernetes API); same kinds and checks as loadPolicyStore. */
export function loadPolicyObjects(objs: unknown[]): PolicyStore {
  const items: Located[] = [];
  objs.forEach((o, i) => flatten(o, isObject(o) ? 'from the Kubernetes API' : `object #${i}`, items));
  const generation = hash(canonical(items.map((it) => essence(it.obj)).sort((a, b) => canonical(a).localeCompare(canonical(b)))));
  return build(items, generation);
}

/** One YAML document (a Kubernetes object for `policy test --resource`); throws ERR_INVALID_INPUT naming `what`. */
export function parseYamlObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    bad(`${what}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObject(v)) bad(`${what}: expected a YAML mapping`);
  return v;
}

/** Resources as a multi-document YAML stream (`---` between documents). */
export function formatYamlDocuments(docs: readonly unknown[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}
