// Shared fixtures for the log tests: a log server in a temp dir, signing keys, a small CA, and
// request builders for the Rekor entry types.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { generateSigner, type KeyObjectSigner } from '../../keys/src/memory.ts';
import { selfSignedRoot, signCertificate } from '../../keys/src/certify.ts';
import { ext, simpleName } from '../../core/src/x509-build.ts';
import { encodePem } from '../../core/src/pem.ts';
import type { Certificate } from '../../core/src/x509.ts';
import { pae } from '../../core/src/dsse.ts';
import { startLogServer, type LogServiceOptions, type LogService } from '../src/service.ts';

export const HOST = 'log.waxseal.test';

export interface TestLog {
  url: string;
  dir: string;
  service: LogService;
  /** Stops the server and the log, keeping the data directory. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestLog(opts: Partial<LogServiceOptions> & { httpWorkers?: number } = {}): Promise<TestLog> {
  const dir = mkdtempSync(join(tmpdir(), 'wx-log-'));
  const server = await startLogServer({
    dataDir: dir,
    signer: generateSigner('ed25519'),
    hostname: HOST,
    batchMaxDelayMs: 5,
    treeId: '1193050959916656506',
    ...opts,
  });
  return {
    url: server.url,
    dir,
    service: server.service,
    stop: () => server.close(),
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The log tests' short names for the shared HTTP helpers.
export { postJson as post, fetchReply as get } from '@waxseal/testkit';

export interface ClientKey {
  privateKey: KeyObject;
  spki: Uint8Array;
  pem: string;
}

export function p256Key(): ClientKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  return { privateKey, spki, pem: encodePem('PUBLIC KEY', spki) };
}

export const sha256 = (b: Uint8Array | string) => new Uint8Array(createHash('sha256').update(b).digest());

/** A signature over `data` (so over its SHA-256 digest). */
export function signData(k: ClientKey, data: Uint8Array | string): Uint8Array {
  return new Uint8Array(sign('sha256', typeof data === 'string' ? Buffer.from(data) : data, { key: k.privateKey, dsaEncoding: 'der' }));
}

export const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');

export function hashedRekordV2(k: ClientKey, data: string, verifier?: { x509Certificate: Uint8Array }): any {
  return {
    hashedRekordRequestV002: {
      digest: b64(sha256(data)),
      signature: {
        content: b64(signData(k, data)),
        verifier: {
          ...(verifier ? { x509Certificate: { rawBytes: b64(verifier.x509Certificate) } } : { publicKey: { rawBytes: b64(k.spki) } }),
          keyDetails: 'PKIX_ECDSA_P256_SHA_256',
        },
      },
    },
  };
}

export function hashedRekordV1(k: ClientKey, data: string, keyPem = k.pem): any {
  return {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: Buffer.from(sha256(data)).toString('hex') } },
      signature: { content: b64(signData(k, data)), publicKey: { content: b64(keyPem) } },
    },
  };
}

export function dsseEnvelope(
  k: ClientKey,
  payload: string,
  payloadType = 'application/vnd.in-toto+json',
): { payload: string; payloadType: string; signatures: { sig: string; keyid: string }[] } {
  const sig = sign('sha256', pae(payloadType, Buffer.from(payload)), { key: k.privateKey, dsaEncoding: 'der' });
  return { payload: b64(payload), payloadType, signatures: [{ sig: b64(sig), keyid: '' }] };
}

export interface TestCa {
  root: Certificate;
  rootSigner: KeyObjectSigner;
  /** A leaf for `key` with an e-mail SAN. */
  leaf(key: ClientKey, email: string): Promise<Certificate>;
}

export async function testCa(name = 'Test CA'): Promise<TestCa> {
  const rootSigner = generateSigner('ecdsa-p256');
  const root = await selfSignedRoot(rootSigner, { commonName: name, notAfter: new Date(Date.now() + 86400_000) });
  return {
    root,
    rootSigner,
    leaf: (key, email) =>
      signCertificate(
        {
          subject: simpleName(undefined, ''),
          spki: key.spki,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 600_000),
          extensions: [ext.keyUsage(['digitalSignature']), ext.subjectAltName([{ type: 'email', value: email }], true)],
        },
        rootSigner,
        root,
      ),
  };
}

export const certPem = (c: Certificate) => encodePem('CERTIFICATE', c.der);
