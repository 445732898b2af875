// The TSA alone in its own process, for bench/tsa.bench.ts: an ephemeral dev chain (key kind from
// argv[2], default ecdsa-p256; optional signing batch size in argv[3]), the standalone server,
// and a "LISTENING <url>" line when ready.
import { generateDevTsaChain } from '../../packages/tsa/src/chain.ts';
import { startTsaServer } from '../../packages/tsa/src/service.ts';
import type { GeneratedKeyKind } from '../../packages/keys/src/memory.ts';

const kind = (process.argv[2] ?? 'ecdsa-p256') as GeneratedKeyKind;
const { signer, chain } = await generateDevTsaChain({ kind });
const maxBatch = process.argv[3] ? Number(process.argv[3]) : undefined;
const server = await startTsaServer({ signer, chain, ...(maxBatch ? { maxBatch } : {}) });
process.stdout.write(`LISTENING ${server.url}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
