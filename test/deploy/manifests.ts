// The plain manifests as `kubectl apply -k` sees them: the kustomization's resources, read here
// directly (files, and directories with their own kustomization.yaml), and, where kubectl is
// installed (it bundles kustomize), the overlays built by kustomize itself.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Obj, REPO, readYaml, yamlDocs } from './k8s.ts';

export const MANIFESTS = join(REPO, 'deploy/manifests');
export const OVERLAYS = ['policy-dir', 'cert-manager'].map((o) => join(REPO, 'deploy/overlays', o));

/** The objects a kustomization without patches lists, in order. */
export function kustomizationResources(dir: string): Obj[] {
  const [k] = readYaml(join(dir, 'kustomization.yaml'));
  const out: Obj[] = [];
  for (const r of (k?.['resources'] ?? []) as string[]) {
    const p = join(dir, r);
    out.push(...(statSync(p).isDirectory() ? kustomizationResources(p) : readYaml(p)));
  }
  return out;
}

let kubectlUsable: boolean | undefined;
/** Whether `kubectl kustomize` runs here (no cluster needed). */
export function haveKustomize(): boolean {
  kubectlUsable ??= spawnSync('kubectl', ['kustomize', MANIFESTS], { encoding: 'utf8', timeout: 60_000 }).status === 0;
  return kubectlUsable;
}

/** `kubectl kustomize <dir>`, parsed. */
export function kustomize(dir: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr || r.error?.message}`);
  return yamlDocs(r.stdout, `kustomize ${dir}`);
}

export const key = (o: Obj): string =>
  `${o['kind']}/${(o['metadata'] as Obj | undefined)?.['namespace'] ?? ''}/${(o['metadata'] as Obj | undefined)?.['name']}`;

export function byKey(objs: Obj[]): Map<string, Obj> {
  const m = new Map<string, Obj>();
  for (const o of objs) {
    if (m.has(key(o))) throw new Error(`duplicate object ${key(o)}`);
    m.set(key(o), o);
  }
  return m;
}

export const readText = (p: string): string => readFileSync(p, 'utf8');
