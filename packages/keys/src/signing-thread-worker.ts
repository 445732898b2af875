// The worker side of signing-thread.ts: signs each batch with the key it was started with.
import { parentPort, workerData } from 'node:worker_threads';
import { sign, type KeyObject } from 'node:crypto';
import { packMessages, unpackMessages, type PackedBatch } from './signing-thread.ts';

const { key, hash } = workerData as { key: KeyObject; hash: string | null };

parentPort!.on('message', (b: PackedBatch) => {
  try {
    const signatures = unpackMessages(b).map((m) => sign(hash, m, key));
    const out = packMessages(b.id, signatures);
    parentPort!.postMessage(out, [out.data.buffer as ArrayBuffer, out.ends.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: b.id, error: e instanceof Error ? e.message : String(e) });
  }
});
