// Shared pieces of the key-backend tests: a file-key root CA, openssl chain checks, temp dirs.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../core/src/pem.ts';
import { utf8 } from '../../core/src/bytes.ts';
import { publicKeyFromSpki, verifySignature } from '../../core/src/crypto.ts';
import type { Certificate } from '../../core/src/x509.ts';
import { generateSigner, type GeneratedKeyKind } from '../src/memory.ts';
import { openSigner } from '../src/open.ts';
import { intermediateCa, selfSignedRoot, tsaLeaf } from '../src/certify.ts';
import type { Signer } from '../src/signer.ts';

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
  const cert = await selfSignedRoot(signer, {
    organization: 'Waxseal test',
    commonName: 'offline root',
    notAfter: inOneYear(),
    pathLen: 1,
  });
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

/** `sig` is the backend's signature over `data`: it verifies with node:crypto, and over nothing else. */
export function assertSigns(signer: Signer, data: Uint8Array, sig: Uint8Array): void {
  const pub = publicKeyFromSpki(signer.publicKeySpki);
  assert.equal(pub.kind, signer.kind);
  assert.ok(verifySignature(pub, data, sig, { hash: signer.hash }), 'signature verifies with node:crypto');
  assert.ok(!verifySignature(pub, utf8('other data'), sig, { hash: signer.hash }), 'signature is bound to the data');
}

/**
 * Under `root`, an intermediate CA whose key is `key` (the backend under test) and a TSA leaf for
 * a new `leafKind` key that `key` signs: the leaf carries `signatureAlgorithm` and openssl
 * verifies the chain.
 */
export async function assertSignsChain(
  dir: string,
  root: { signer: Signer; cert: Certificate },
  key: Signer,
  o: { intermediate: string; leaf?: string; leafKind?: GeneratedKeyKind; signatureAlgorithm: string },
): Promise<void> {
  const inter = await intermediateCa(key.publicKeySpki, root.signer, root.cert, {
    organization: 'Waxseal test',
    commonName: o.intermediate,
    notAfter: inOneYear(),
    pathLen: 0,
  });
  const leafKey = generateSigner(o.leafKind ?? 'ecdsa-p256');
  const leaf = await tsaLeaf(leafKey.publicKeySpki, key, inter, {
    organization: 'Waxseal test',
    commonName: o.leaf ?? 'TSA',
    notAfter: inOneYear(),
  });
  assert.equal(leaf.signatureAlgorithm, o.signatureAlgorithm);
  assert.match(opensslVerify(dir, root.cert, [inter], leaf), /leaf\.pem: OK/);
}

/** A free TCP port on 127.0.0.1 (for servers that cannot listen on port 0 themselves). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Moto {
  endpoint: string;
  hostPort: string;
  stop(): Promise<void>;
}

/** Starts `moto_server` on a free port and waits until it is listening; stop() kills it. */
export async function startMoto(): Promise<Moto> {
  const { spawn } = await import('node:child_process');
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = `http://127.0.0.1:${port}`;
  let stderr = '';
  // Werkzeug prints " * Running on <endpoint>" once its socket listens: wait for that line
  // (or the exit, or 20 s), not for a polling loop to get lucky.
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moto_server did not start listening on ${endpoint} within 20 s: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString();
      if (stderr.includes(`Running on ${endpoint}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`moto_server exited early: ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await ready;
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoint, hostPort: `127.0.0.1:${port}`, stop };
}
