// `npm run bench`: runs every bench/*.bench.ts in turn. Each prints its figures next to a
// baseline measured in the same run. Pass names to run a subset: npm run bench -- tsa ca
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { machineLine } from './lib.ts';

const dir = new URL('.', import.meta.url).pathname;
const only = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
process.stdout.write(`${machineLine()}\n`);
let failed = 0;
for (const b of benches) {
  process.stdout.write(`\n== ${b.replace('.bench.ts', '')} ==\n`);
  // Same Node flags as this runner (npm run bench passes --conditions=waxseal-source).
  const r = spawnSync(process.execPath, [...process.execArgv, dir + b], { stdio: 'inherit', timeout: 15 * 60_000 });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
