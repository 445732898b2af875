// The transparency log as a standalone process for benchmarks and crash tests (see src/log/main.ts).
import { runLogServerMain } from '../../packages/rekor/src/main.ts';

runLogServerMain(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`log server failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
