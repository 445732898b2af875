// The repository's npm workspaces and what `npm pack` would put in each one's tarball.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

export interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  exports?: unknown;
  bin?: string | Record<string, string>;
  main?: string;
  types?: string;
  files?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  bundleDependencies?: string[];
  [k: string]: unknown;
}

export interface Workspace {
  /** Absolute path of the package folder. */
  dir: string;
  /** Path relative to the repository root, e.g. packages/verify. */
  rel: string;
  pkg: PackageJson;
}

/** Every workspace (packages/*, apps/* as the root package.json lists them), sorted by path. */
export function workspaces(): Workspace[] {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  const out: Workspace[] = [];
  for (const pattern of root.workspaces) {
    // The root lists `<folder>/*` patterns only; anything else would need a glob library.
    if (!pattern.endsWith('/*') || pattern.slice(0, -2).includes('*')) throw new Error(`unsupported workspace pattern ${pattern}`);
    const parent = join(REPO_ROOT, pattern.slice(0, -2));
    for (const name of readdirSync(parent).sort()) {
      const dir = join(parent, name);
      if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'package.json'))) continue;
      out.push({ dir, rel: `${pattern.slice(0, -2)}/${name}`, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) });
    }
  }
  return out;
}

/** The workspaces that are published (not "private"). */
export function publishable(): Workspace[] {
  return workspaces().filter((w) => !w.pkg.private);
}

/** The environment for npm and node children: Node 24 first on PATH, no inherited NODE_OPTIONS (the waxseal-source condition). */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  // npm and the node-gyp it runs start with `#!/usr/bin/env node`: make that the Node running us.
  env.PATH = `${resolve(process.execPath, '..')}:${env.PATH ?? ''}`;
  return { ...env, ...extra };
}

/** Runs npm (the one on PATH) and returns its stdout; throws with its output on failure. */
export function npm(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): string {
  try {
    return execFileSync('npm', args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env ?? childEnv(),
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: opts.timeoutMs ?? 10 * 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}${x.stderr ?? ''}`);
  }
}

/** Files that `npm pack` would put in each workspace's tarball, keyed by package name (one npm run for all). */
export function packedFiles(list: Workspace[]): Map<string, string[]> {
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts', ...list.flatMap((w) => ['--workspace', w.rel])];
  const result = JSON.parse(npm(args)) as { name: string; files: { path: string }[] }[];
  return new Map(result.map((r) => [r.name, r.files.map((f) => f.path)]));
}

/** The string leaves of an exports map with the condition path that leads to each. */
export function exportTargets(exportsField: unknown, path: string[] = []): { conditions: string[]; target: string }[] {
  if (typeof exportsField === 'string') return [{ conditions: path, target: exportsField }];
  if (Array.isArray(exportsField)) return exportsField.flatMap((x) => exportTargets(x, path));
  if (exportsField && typeof exportsField === 'object') {
    return Object.entries(exportsField).flatMap(([k, v]) => exportTargets(v, [...path, k]));
  }
  return [];
}

/** The development-only condition that points exports at TypeScript sources; never published. */
export const SOURCE_CONDITION = 'waxseal-source';
