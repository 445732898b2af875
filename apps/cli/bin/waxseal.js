#!/usr/bin/env node
// Entry point installed as `waxseal`: runs the built JavaScript (npm run build) with Node's
// compile cache on, so that repeated runs skip parsing and compiling.
import module from 'node:module';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`waxseal: Node.js >= 24 is required (found ${process.versions.node})\n`);
  process.exit(2);
}
module.enableCompileCache?.();
const { run } = await import('../dist/main.js');
run(process.argv.slice(2));
