// The layering rules, checked by machine: the pure core does no I/O and depends on nothing above
// it; the verifier stays pure too. See docs/architecture.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

const IO_MODULES = /^node:(fs|http|https|net|child_process|dgram|tls|worker_threads|cluster|sqlite)(\/|$)/;

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

for (const layer of ['core', 'bundle', 'verify']) {
  test(`src/${layer} does no I/O and imports only lower pure layers`, () => {
    const allowed: Record<string, string[]> = { core: ['core'], bundle: ['core', 'bundle'], verify: ['core', 'bundle', 'verify'] };
    let dir: string;
    try {
      dir = join(root, 'src', layer);
      statSync(dir);
    } catch {
      return; // layer not present yet
    }
    for (const f of files(dir)) {
      for (const spec of imports(f)) {
        const where = relative(root, f);
        assert.ok(!IO_MODULES.test(spec), `${where} imports ${spec}: the ${layer} layer must stay free of I/O`);
        if (spec.startsWith('.')) {
          const target = relative(join(root, 'src'), join(f, '..', spec)).split('/')[0]!;
          assert.ok(allowed[layer]!.includes(target), `${where} imports ${spec}: ${layer} may only depend on ${allowed[layer]!.join(', ')}`);
        }
      }
    }
  });
}
