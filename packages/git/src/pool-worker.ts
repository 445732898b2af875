// A worker thread of evaluateMany (pool.ts): rebuilds the policy context from the setup it is
// given (its own Verifier over the same trusted root and options), then evaluates each batch.
import { parentPort, workerData } from 'node:worker_threads';
import { Verifier } from '@waxseal/verify';
import { evaluateObject, type ObjectVerdict, type PolicyContext } from './evaluate.ts';
import type { RawObject, WorkerSetup } from './pool.ts';

const setup = workerData as WorkerSetup;
const ctx: PolicyContext = {
  policy: setup.policy,
  verifier: setup.trustedRoot ? new Verifier(setup.trustedRoot, setup.verifierOptions) : undefined,
  keys: setup.keys,
  matchCommitter: setup.matchCommitter,
};
parentPort!.on('message', async (m: { objects?: RawObject[]; done?: true }) => {
  if (m.done) return parentPort!.close();
  const verdicts: ObjectVerdict[] = [];
  for (const o of m.objects ?? []) verdicts.push(await evaluateObject(o.id, o.type, o.raw, ctx));
  parentPort!.postMessage({ verdicts });
});
parentPort!.postMessage({ ready: true });
