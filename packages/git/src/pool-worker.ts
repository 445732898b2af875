// A worker thread of evaluateMany (pool.ts): rebuilds the policy context from the setup it is
// given in its first message (its own Verifier over the same trusted root and options), then
// evaluates each batch.
import { parentPort } from 'node:worker_threads';
import { Verifier } from '@waxseal/verify';
import { evaluateObject, type ObjectVerdict, type PolicyContext } from './evaluate.ts';
import type { RawObject, WorkerSetup } from './pool.ts';

// The first message is the setup; the thread starts (and loads the modules above) before it.
let ctx: PolicyContext | undefined;
parentPort!.on('message', async (m: { setup?: WorkerSetup; objects?: RawObject[]; done?: true }) => {
  if (m.done) return parentPort!.close();
  if (m.setup) {
    ctx = {
      policy: m.setup.policy,
      verifier: m.setup.trustedRoot ? new Verifier(m.setup.trustedRoot, m.setup.verifierOptions) : undefined,
      keys: m.setup.keys,
      matchCommitter: m.setup.matchCommitter,
    };
    return;
  }
  const verdicts: ObjectVerdict[] = [];
  for (const o of m.objects ?? []) verdicts.push(await evaluateObject(o.id, o.type, o.raw, ctx!));
  parentPort!.postMessage({ verdicts });
});
parentPort!.postMessage({ ready: true });
