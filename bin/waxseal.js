#!/usr/bin/env node
// Entry point installed as `waxseal`. Needs Node >= 24 (type stripping runs the TypeScript sources).
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`waxseal: Node.js >= 24 is required (found ${process.versions.node}); run it through npm/npx in the repository, which brings Node 24\n`);
  process.exit(2);
}
await import('../src/cli/main.ts');
