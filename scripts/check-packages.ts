// `npm run check:packages` (after `npm run build`): checks what each publishable workspace would
// publish, from the file list `npm pack` reports:
// - every `exports` target, `bin`, `main` and `types` is in the tarball (the waxseal-source
//   targets, development-only, must exist in the repository instead);
// - no packed declaration file imports a `./x.ts` that is not published (see lib/dts.ts);
// - every @waxseal/* dependency names the version of that workspace (scripts/pack.ts bundles it);
// - publint passes, warnings included.
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { tsSpecifiers } from './lib/dts.ts';
import { exportTargets, packedFiles, publishable, SOURCE_CONDITION, type Workspace } from './lib/workspaces.ts';

const list = publishable();
const versions = new Map(list.map((w) => [w.pkg.name, w.pkg.version]));
const packed = packedFiles(list);
const problems: string[] = [];
const notes: string[] = [];

function entryPoints(w: Workspace): { field: string; target: string; dev: boolean }[] {
  const out = exportTargets(w.pkg.exports).map((t) => ({
    field: ['exports', ...t.conditions].join(' > '),
    target: t.target,
    dev: t.conditions.includes(SOURCE_CONDITION),
  }));
  const bin = typeof w.pkg.bin === 'string' ? { [w.pkg.name]: w.pkg.bin } : (w.pkg.bin ?? {});
  for (const [name, target] of Object.entries(bin)) out.push({ field: `bin > ${name}`, target, dev: false });
  if (w.pkg.main) out.push({ field: 'main', target: w.pkg.main, dev: false });
  if (w.pkg.types) out.push({ field: 'types', target: w.pkg.types, dev: false });
  return out;
}

for (const w of list) {
  const name = w.pkg.name;
  const files = packed.get(name);
  if (!files) {
    problems.push(`${name}: npm pack reported no files`);
    continue;
  }
  const inTarball = new Set(files);
  const bad = (msg: string) => problems.push(`${name} (${w.rel}): ${msg}`);

  if (!w.pkg.exports && !w.pkg.main) bad('neither "exports" nor "main"');
  for (const e of entryPoints(w)) {
    if (e.target.includes('*')) {
      bad(`${e.field}: pattern targets are not checked by this script: ${e.target}`);
      continue;
    }
    const rel = posix.normalize(e.target);
    if (!existsSync(join(w.dir, rel))) bad(`${e.field}: ${e.target} does not exist (npm run build?)`);
    else if (!e.dev && !inTarball.has(rel)) bad(`${e.field}: ${e.target} is not in the tarball (see "files")`);
  }

  for (const f of files.filter((x) => /\.d\.[mc]?ts$/.test(x))) {
    for (const s of tsSpecifiers(f, readFileSync(join(w.dir, f), 'utf8'))) {
      bad(`${f} imports '${s.text}': build with \`npm run build\` (scripts/build.ts rewrites it to .js)`);
    }
  }

  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies'] as const) {
    for (const [dep, range] of Object.entries(w.pkg[field] ?? {})) {
      if (!dep.startsWith('@waxseal/')) continue;
      const v = versions.get(dep);
      if (v === undefined) bad(`${field} > ${dep}: no publishable workspace has that name`);
      else if (range !== v) bad(`${field} > ${dep}: "${range}" is not the workspace's version "${v}"`);
    }
  }

  const result = await publint({
    pkgDir: 'package',
    pack: {
      files: ['package.json', ...files.filter((f) => f !== 'package.json')].map((f) => ({
        name: `package/${f}`,
        data: readFileSync(join(w.dir, f)),
      })),
    },
    strict: true,
  });
  for (const m of result.messages) {
    const text = `publint ${m.type} ${m.code}: ${formatMessage(m, result.pkg, { color: false }) ?? m.code}`;
    if (m.type === 'suggestion') notes.push(`${name}: ${text}`);
    else bad(text);
  }
}

for (const n of notes) process.stdout.write(`note: ${n}\n`);
if (problems.length) {
  process.stderr.write(`check:packages: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(
  `check:packages: ${list.length} packages OK (exports, bin and types in the tarball; declarations; internal versions; publint)\n`,
);
