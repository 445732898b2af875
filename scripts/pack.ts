// `npm run pack:tarballs -- <folder>` (after `npm run build`): one tarball per publishable
// workspace, in <folder>, plus <folder>/tarballs.json that lists them.
//
// Each package is staged in a scratch folder outside the repository (npm pack of a workspace
// folder would see the monorepo) with the files `npm pack` reports for it and its published
// manifest: the development-only waxseal-source condition is dropped from "exports", since src/
// is not published. The CLI tarball bundles every @waxseal/* package it needs (bundleDependencies,
// laid out in the staged node_modules), so `npm install -g waxseal-cli-<v>.tgz` works while
// @waxseal/* is on no registry; their third-party dependencies install from the registry as usual.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  childEnv,
  exportTargets,
  npm,
  packedFiles,
  publishable,
  SOURCE_CONDITION,
  type PackageJson,
  type Workspace,
} from './lib/workspaces.ts';

/** Packages whose tarball carries its @waxseal/* dependencies inside it. */
const BUNDLING = new Set(['@waxseal/cli']);

export interface Tarball {
  name: string;
  version: string;
  /** Absolute path of the .tgz. */
  file: string;
  /** Its @waxseal/* dependencies (all kinds), which the installer must also be given unless bundled. */
  waxsealDependencies: string[];
  /** The @waxseal/* packages inside the tarball. */
  bundled: string[];
}

function withoutSourceCondition(exportsField: unknown): unknown {
  if (Array.isArray(exportsField)) return exportsField.map(withoutSourceCondition);
  if (exportsField && typeof exportsField === 'object') {
    return Object.fromEntries(
      Object.entries(exportsField)
        .filter(([k]) => k !== SOURCE_CONDITION)
        .map(([k, v]) => [k, withoutSourceCondition(v)]),
    );
  }
  return exportsField;
}

function waxsealDeps(pkg: PackageJson): string[] {
  const all = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
  return Object.keys(all)
    .filter((d) => d.startsWith('@waxseal/'))
    .sort();
}

/** The @waxseal/* packages `name` needs, transitively, without itself (through required dependencies only if `requiredOnly`). */
function closure(name: string, byName: Map<string, Workspace>, requiredOnly = false): string[] {
  const seen = new Set<string>();
  const visit = (n: string) => {
    const w = byName.get(n);
    if (!w) throw new Error(`${n} is not a publishable workspace`);
    const deps = requiredOnly ? Object.keys(w.pkg.dependencies ?? {}).filter((d) => d.startsWith('@waxseal/')) : waxsealDeps(w.pkg);
    for (const d of deps) {
      if (!seen.has(d)) {
        seen.add(d);
        visit(d);
      }
    }
  };
  visit(name);
  return [...seen].sort();
}

/**
 * The bundling package's manifest. npm counts the dependencies of a bundled package as part of the
 * bundle and fetches none of them (it leaves empty folders), so the third-party dependencies of
 * everything bundled move to the top manifest (and out of the bundled copies, see
 * `bundledManifest`): npm installs them beside the bundle, where the bundled packages find them by
 * walking up node_modules. Those of packages reached only through optional dependencies (the
 * KMS/HSM key backends) stay optional.
 */
function bundlingManifest(w: Workspace, byName: Map<string, Workspace>): PackageJson {
  const m = publishedManifest(w);
  const inside = closure(w.pkg.name, byName);
  const required = new Set(closure(w.pkg.name, byName, true));
  const deps: Record<string, string> = { ...m.dependencies };
  const optional: Record<string, string> = { ...m.optionalDependencies };
  const lift = (into: Record<string, string>, dep: string, range: string, from: string) => {
    const have = deps[dep] ?? optional[dep];
    if (have !== undefined && have !== range) throw new Error(`${from} needs ${dep}@${range} but another bundled package needs ${have}`);
    if (deps[dep] === undefined) into[dep] = range;
  };
  for (const d of inside) {
    const p = byName.get(d)!.pkg;
    if (required.has(d)) deps[d] = p.version;
    else optional[d] ??= p.version;
    for (const [dep, range] of Object.entries(p.dependencies ?? {})) {
      if (!dep.startsWith('@waxseal/')) lift(required.has(d) ? deps : optional, dep, range, d);
    }
    for (const [dep, range] of Object.entries(p.optionalDependencies ?? {}))
      if (!dep.startsWith('@waxseal/')) lift(optional, dep, range, d);
  }
  for (const dep of Object.keys(deps)) delete optional[dep];
  const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  m.dependencies = sorted(deps);
  if (Object.keys(optional).length) m.optionalDependencies = sorted(optional);
  m.bundleDependencies = inside;
  return m;
}

/** Stages `w` into `dir`: its packed files and its published manifest. */
function stage(w: Workspace, files: string[], dir: string, manifest: PackageJson): void {
  mkdirSync(dir, { recursive: true });
  for (const f of files) {
    if (f === 'package.json') continue;
    mkdirSync(join(dir, f, '..'), { recursive: true });
    cpSync(join(w.dir, f), join(dir, f)); // keeps the mode (bin scripts stay executable)
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** A bundled copy's manifest: only its @waxseal/* dependencies, which the bundle holds. */
function bundledManifest(w: Workspace): PackageJson {
  const m = publishedManifest(w);
  const own = (o: Record<string, string> | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([d]) => d.startsWith('@waxseal/')));
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies'] as const) {
    if (m[field] === undefined) continue;
    const kept = own(m[field]);
    if (Object.keys(kept).length) m[field] = kept;
    else delete m[field];
  }
  return m;
}

function publishedManifest(w: Workspace): PackageJson {
  const m: PackageJson = { ...w.pkg };
  if (m.exports !== undefined) m.exports = withoutSourceCondition(m.exports);
  delete m.devDependencies;
  return m;
}

export function packAll(outDir: string): Tarball[] {
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  const list = publishable();
  for (const w of list) {
    for (const t of exportTargets(w.pkg.exports)) {
      if (!t.conditions.includes(SOURCE_CONDITION) && !existsSync(join(w.dir, t.target))) {
        throw new Error(`${w.pkg.name}: ${t.target} does not exist: run \`npm run build\` first`);
      }
    }
  }
  const byName = new Map(list.map((w) => [w.pkg.name, w]));
  const files = packedFiles(list);
  const staging = mkdtempSync(join(tmpdir(), 'waxseal-pack-'));
  try {
    const dirs = new Map<string, string>();
    for (const w of list) {
      const dir = join(staging, w.pkg.name.replace('/', '+'));
      stage(w, files.get(w.pkg.name)!, dir, publishedManifest(w));
      dirs.set(w.pkg.name, dir);
    }
    const bundledBy = new Map<string, string[]>();
    for (const name of BUNDLING) {
      const w = byName.get(name)!;
      const m = bundlingManifest(w, byName);
      const inside = m.bundleDependencies!;
      const dir = join(staging, `${name.replace('/', '+')}+bundled`);
      stage(w, files.get(name)!, dir, m);
      for (const d of inside) {
        const to = join(dir, 'node_modules', d);
        cpSync(dirs.get(d)!, to, { recursive: true });
        writeFileSync(join(to, 'package.json'), `${JSON.stringify(bundledManifest(byName.get(d)!), null, 2)}\n`);
      }
      dirs.set(name, dir);
      bundledBy.set(name, inside);
    }
    const names = list.map((w) => w.pkg.name);
    const result = JSON.parse(
      npm(['pack', '--json', '--ignore-scripts', '--pack-destination', out, ...names.map((n) => dirs.get(n)!)], {
        cwd: staging,
        env: childEnv(),
      }),
    ) as { name: string; filename: string }[];
    const tarballs = result.map((r): Tarball => {
      const w = byName.get(r.name)!;
      return {
        name: r.name,
        version: w.pkg.version,
        file: join(out, r.filename),
        waxsealDependencies: waxsealDeps(w.pkg),
        bundled: bundledBy.get(r.name) ?? [],
      };
    });
    writeFileSync(join(out, 'tarballs.json'), `${JSON.stringify(tarballs, null, 2)}\n`);
    return tarballs;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dest = process.argv[2];
  if (!dest || process.argv.length > 3) {
    process.stderr.write('usage: node scripts/pack.ts <folder>   (run `npm run build` first)\n');
    process.exit(2);
  }
  for (const t of packAll(dest)) {
    process.stdout.write(`${t.file}${t.bundled.length ? `   (bundles ${t.bundled.length} @waxseal packages)` : ''}\n`);
  }
}
