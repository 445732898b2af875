// `npm run build`: tsc -b over every package (tsconfig.build.json; extra arguments pass through,
// e.g. `npm run build -- --verbose`), then what tsc does not do, since dist/ is what gets packed:
// - `./x.ts` specifiers in emitted .d.ts files become `./x.js`, so published declarations
//   resolve (see lib/dts.ts);
// - outputs whose source is gone (a renamed or deleted src/ file) are removed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { rewriteTsSpecifiers } from './lib/dts.ts';
import { REPO_ROOT, workspaces } from './lib/workspaces.ts';

const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const r = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json', ...process.argv.slice(2)], { cwd: REPO_ROOT, stdio: 'inherit' });
// tsc -b still emits the projects it can when some have errors: fix those too, then fail as tsc did.

/** Every file under `dir`; empty folders are removed on the way out. */
function* filesIn(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      yield* filesIn(p);
      if (readdirSync(p).length === 0) rmdirSync(p);
    } else yield p;
  }
}

// Each package compiles src/ into dist/ (rootDir/outDir in its tsconfig.json).
const OUTPUT = /^(.*)\.(m|c)?(js|js\.map|d\.ts|d\.ts\.map)$/;

let declarations = 0;
let rewritten = 0;
let removed = 0;
for (const w of workspaces()) {
  const dist = join(w.dir, 'dist');
  if (!existsSync(dist)) continue;
  for (const file of filesIn(dist)) {
    const m = OUTPUT.exec(relative(dist, file));
    if (m && !existsSync(join(w.dir, 'src', `${m[1]}.${m[2] ?? ''}ts`))) {
      rmSync(file);
      removed++;
      continue;
    }
    if (!/\.d\.[mc]?ts$/.test(file)) continue;
    declarations++;
    const text = readFileSync(file, 'utf8');
    const fixed = rewriteTsSpecifiers(file, text);
    if (fixed === text) continue;
    // Keep the emit time: tsc -b compares declaration times to decide what is up to date.
    const { atime, mtime } = statSync(file);
    writeFileSync(file, fixed);
    utimesSync(file, atime, mtime);
    rewritten++;
  }
}
process.stdout.write(
  `build: ${rewritten} of ${declarations} declaration files rewritten to import ./x.js; ${removed} outputs of deleted sources removed\n`,
);
process.exitCode = r.status ?? 1;
