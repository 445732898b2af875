#!/usr/bin/env node
// waxseal-git in Node.js (bin/waxseal-git runs it when the native client is not built, and the
// native client runs it when no agent answers). git-client.js first:
// when the per-user agent runs, it answers git's request and nothing else is loaded; otherwise
// the full program (built JavaScript, Node's compile cache on, as bin/waxseal.js).
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`waxseal-git: Node.js >= 24 is required (found ${process.versions.node})\n`);
  process.exit(2);
}
const { tryAgent } = await import('../dist/git-client.js');
const argv = process.argv.slice(2);
const r = await tryAgent(argv);
if ('code' in r) process.exitCode = r.code;
else {
  (await import('node:module')).default.enableCompileCache?.();
  const { main } = await import('../dist/git-program.js');
  process.exitCode = await main(argv, process.env, r.stdin);
}
