// Shared pieces of the key-backend tests: a file-key root CA, openssl chain checks, temp dirs.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../src/core/pem.ts';
import type { Certificate } from '../../src/core/x509.ts';
import { generateSigner } from '../../src/keys/memory.ts';
import { openSigner } from '../../src/keys/open.ts';
import { selfSignedRoot } from '../../src/keys/certify.ts';
import type { Signer } from '../../src/keys/signer.ts';

export const hasCommand = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `waxseal-${prefix}-`));
}

export const inOneYear = (): Date => new Date(Date.now() + 365 * 24 * 3600 * 1000);

/** An offline-style root: a P-256 key in a PEM file, opened through openSigner(file://…). */
export async function fileRoot(dir: string): Promise<{ signer: Signer; cert: Certificate }> {
  const keyPath = join(dir, 'root-key.pem');
  writeFileSync(keyPath, generateSigner('ecdsa-p256').exportPkcs8Pem(), { mode: 0o600 });
  const signer = await openSigner(`file://${keyPath}`);
  const cert = await selfSignedRoot(signer, { organization: 'Waxseal test', commonName: 'offline root', notAfter: inOneYear(), pathLen: 1 });
  return { signer, cert };
}

/** Runs `openssl verify` on leaf with the root as trust anchor and the intermediates as untrusted. */
export function opensslVerify(dir: string, root: Certificate, intermediates: Certificate[], leaf: Certificate, purpose?: string): string {
  const rootPath = join(dir, 'root.pem');
  const chainPath = join(dir, 'chain.pem');
  const leafPath = join(dir, 'leaf.pem');
  writeFileSync(rootPath, encodePem('CERTIFICATE', root.der));
  writeFileSync(chainPath, intermediates.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  writeFileSync(leafPath, encodePem('CERTIFICATE', leaf.der));
  const args = ['verify', '-x509_strict', '-CAfile', rootPath];
  if (intermediates.length) args.push('-untrusted', chainPath);
  if (purpose) args.push('-purpose', purpose);
  args.push(leafPath);
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
