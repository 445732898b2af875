// A standalone log server process (used by the crash test and the benchmark):
//   node src/log/main.ts --data-dir DIR [--port 0] [--host 127.0.0.1] [--hostname log.local]
//     [--key FILE (PKCS#8 PEM; created when missing)] [--key-kind ed25519|ecdsa-p256]
//     [--tree-id N] [--batch-size N] [--batch-delay-ms N] [--checkpoint-interval-ms N]
//     [--verify-workers N] [--http-workers N] [--trusted-ca FILE]...
// Prints "LISTENING <url>" once it serves; SIGTERM closes it cleanly.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigner, signerFromPem, writeSecretFile, type GeneratedKeyKind } from '@waxseal/keys';
import { startLogServer } from './service.ts';

export async function runLogServerMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      hostname: { type: 'string', default: 'log.waxseal.test' },
      key: { type: 'string' },
      'key-kind': { type: 'string', default: 'ed25519' },
      'tree-id': { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-delay-ms': { type: 'string' },
      'checkpoint-interval-ms': { type: 'string' },
      'verify-workers': { type: 'string' },
      'http-workers': { type: 'string' },
      'trusted-ca': { type: 'string', multiple: true },
    },
  });
  const dataDir = values['data-dir'];
  if (!dataDir) throw new Error('--data-dir is required');
  mkdirSync(dataDir, { recursive: true });
  const keyFile = values.key ?? join(dataDir, 'log-key.pem');
  let signer;
  if (existsSync(keyFile)) signer = signerFromPem(readFileSync(keyFile, 'utf8'), `file://${keyFile}`);
  else {
    const gen = generateSigner(values['key-kind'] as GeneratedKeyKind, `file://${keyFile}`);
    // Exclusive create, 0600, never through a symlink (a dangling link at the path is refused).
    writeSecretFile(keyFile, gen.exportPkcs8Pem());
    signer = gen;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const opts = {
    dataDir,
    signer,
    hostname: values.hostname!,
    ...(values['tree-id'] ? { treeId: values['tree-id'] } : {}),
    ...(num(values['batch-size']) !== undefined ? { batchSize: num(values['batch-size'])! } : {}),
    ...(num(values['batch-delay-ms']) !== undefined ? { batchMaxDelayMs: num(values['batch-delay-ms'])! } : {}),
    ...(num(values['checkpoint-interval-ms']) !== undefined ? { checkpointIntervalMs: num(values['checkpoint-interval-ms'])! } : {}),
    ...(num(values['verify-workers']) !== undefined ? { verifyWorkers: num(values['verify-workers'])! } : {}),
    ...(num(values['http-workers']) !== undefined ? { httpWorkers: num(values['http-workers'])! } : {}),
    trustedCas: (values['trusted-ca'] ?? []).map((f) => readFileSync(f, 'utf8')),
  };
  const server = await startLogServer(opts, Number(values.port), values.host);
  process.stdout.write(`LISTENING ${server.url}\n`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runLogServerMain(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`log server failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
