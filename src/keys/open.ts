// Opens a signer from a key URI. Backends register here; the configuration names keys only by URI.
//   file:///path/key.pem[?passphrase-env=VAR|passphrase-file=/path]   PEM on disk
//   memory://ephemeral[?kind=ecdsa-p256|ecdsa-p384|ed25519]            generated at start (dev only)
// HSM (pkcs11:) and KMS (awskms://, gcpkms://) backends plug in through registerKeyBackend().
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WaxsealError } from '../core/errors.ts';
import { generateSigner, signerFromPem, type GeneratedKeyKind } from './memory.ts';
import type { Signer } from './signer.ts';

export type KeyBackend = (uri: URL, raw: string) => Promise<Signer>;

const backends = new Map<string, KeyBackend>();

/** Registers a backend for a URI scheme (e.g. 'pkcs11:', 'awskms:'). */
export function registerKeyBackend(scheme: string, backend: KeyBackend): void {
  backends.set(scheme, backend);
}

function readPassphrase(u: URL): string | undefined {
  const env = u.searchParams.get('passphrase-env');
  if (env) {
    const v = process.env[env];
    if (v === undefined) throw new WaxsealError('ERR_CONFIG', `environment variable ${env} (key passphrase) is not set`);
    return v;
  }
  const file = u.searchParams.get('passphrase-file');
  if (file) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  return undefined;
}

registerKeyBackend('file:', async (u, raw) => {
  const path = fileURLToPath(raw.split('?')[0]!);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read key file ${path}`, { cause: e });
  }
  return signerFromPem(pem, raw.split('?')[0]!, readPassphrase(u));
});

registerKeyBackend('memory:', async (u) => {
  const kind = (u.searchParams.get('kind') ?? 'ecdsa-p256') as GeneratedKeyKind;
  if (!['ecdsa-p256', 'ecdsa-p384', 'ed25519'].includes(kind)) throw new WaxsealError('ERR_CONFIG', `unknown key kind ${kind}`);
  return generateSigner(kind, `memory://ephemeral?kind=${kind}`);
});

/** Opens the signer a key URI names. A bare path is treated as a file URI. */
export async function openSigner(uriOrPath: string): Promise<Signer> {
  const raw = /^[a-z][a-z0-9+.-]*:/i.test(uriOrPath) ? uriOrPath : `file://${uriOrPath.startsWith('/') ? '' : process.cwd() + '/'}${uriOrPath}`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new WaxsealError('ERR_CONFIG', `invalid key URI ${uriOrPath}`);
  }
  const backend = backends.get(u.protocol);
  if (!backend) throw new WaxsealError('ERR_CONFIG', `no key backend for ${u.protocol} (key ${uriOrPath})`);
  return backend(u, raw);
}
