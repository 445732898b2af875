// Worker thread for batched P-256 digest verification (native addon, else fastverify.ts).
import { parentPort } from 'node:worker_threads';
import { verifyP256Packed } from './fastverify.ts';

parentPort!.on('message', (msg: { id: number; buf: Uint8Array; count: number }) => {
  let result: Uint8Array;
  try {
    result = verifyP256Packed(msg.buf, msg.count);
  } catch {
    result = new Uint8Array(msg.count);
  }
  parentPort!.postMessage({ id: msg.id, result }, [result.buffer as ArrayBuffer]);
});
