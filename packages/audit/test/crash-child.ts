// Child process for writer.test.ts: appends audit records without pause on the writer thread and
// prints "ACK <seq> <hash>" for each one once record() has resolved (stdout to a pipe is
// synchronous on Linux, so a printed ACK is an acknowledged record), until it is killed.
import { AuditLog } from '../src/index.ts';

const log = AuditLog.open(process.argv[2]!);
let n = 0;
for (;;) {
  const wave = Array.from({ length: 40 }, () =>
    log.record({ actor: 'crash-test', action: 'tsa.timestamp', result: 'ok', digest: (n++).toString(16).padStart(64, '0') }),
  );
  for (const r of await Promise.all(wave)) process.stdout.write(`ACK ${r.seq} ${r.hash}\n`);
}
