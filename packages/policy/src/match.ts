// Which policies apply to an image, as policy-controller's GetMatchingPolicies decides: a policy
// with `match` entries applies only to the resources they name (group, version or `*`, resource,
// label selector); then any of its image globs must match the image's qualified name. Waxseal's
// ImagePolicies apply only in their own namespace, in addition to (never instead of) the cluster
// policies: every matching policy must pass.
import { globMatches } from './glob.ts';
import type { AnyImagePolicy, LabelSelector, MatchResource } from './resources.ts';
import type { PolicyStore } from './store.ts';

export interface MatchTarget {
  /** The image as written in the pod spec. */
  image: string;
  namespace: string;
  /** The kind of the resource under review (Pod, Deployment...). */
  kind: string;
  /** Its apiVersion; default: the usual one for the kind (v1, apps/v1, batch/v1). */
  apiVersion?: string;
  labels: Record<string, string>;
}

const DEFAULT_API_VERSION: Record<string, string> = {
  Pod: 'v1',
  ReplicaSet: 'apps/v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
};

/** apimachinery's UnsafeGuessKindToResource: lower-case plural of the kind. */
export function kindToResource(kind: string): string {
  const k = kind.toLowerCase();
  if (k === '') return '';
  if (k.endsWith('s') || k.endsWith('x') || k.endsWith('z') || k.endsWith('ch') || k.endsWith('sh')) return `${k}es`;
  if (k.endsWith('y') && !/[aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

/** Whether `labels` satisfy a label selector (apimachinery semantics; an empty selector matches all). */
export function selectorMatches(s: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(s.matchLabels)) if (labels[k] !== v) return false;
  for (const x of s.matchExpressions) {
    const has = Object.hasOwn(labels, x.key);
    const v = labels[x.key];
    switch (x.operator) {
      case 'In':
        if (!has || !x.values.includes(v!)) return false;
        break;
      case 'NotIn':
        if (has && x.values.includes(v!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

function resourceMatches(match: MatchResource[], t: MatchTarget): boolean {
  if (match.length === 0) return true;
  const apiVersion = t.apiVersion ?? DEFAULT_API_VERSION[t.kind] ?? 'v1';
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const resource = kindToResource(t.kind);
  return match.some(
    (m) =>
      m.resource === resource &&
      (m.version === version || m.version === '*') &&
      m.group === group &&
      (!m.selector || selectorMatches(m.selector, t.labels)),
  );
}

/** Whether one policy applies to the target (namespace, resource and image). Throws for an invalid image reference. */
export function policyApplies(p: AnyImagePolicy, t: MatchTarget): boolean {
  if (p.kind === 'ImagePolicy' && p.namespace !== t.namespace) return false;
  if (!resourceMatches(p.spec.match, t)) return false;
  return p.spec.images.some((g) => globMatches(g, t.image));
}

/**
 * The policies that apply to the target: cluster policies first, then the namespace's
 * ImagePolicies. Throws ERR_INVALID_INPUT for an image reference that does not parse.
 */
export function matchingPolicies(store: Pick<PolicyStore, 'clusterPolicies' | 'imagePolicies'>, t: MatchTarget): AnyImagePolicy[] {
  const out: AnyImagePolicy[] = [];
  for (const p of store.clusterPolicies) if (policyApplies(p, t)) out.push(p);
  for (const p of store.imagePolicies) if (policyApplies(p, t)) out.push(p);
  return out;
}
