// Opens a signer from a key URI. Backends register here; the configuration names keys only by URI.
//   file:///path/key.pem[?passphrase-env=VAR|passphrase-file=/path]   PEM on disk
//   memory://ephemeral[?kind=ecdsa-p256|ecdsa-p384|ed25519]            generated at start (dev only)
// HSM and KMS backends live in packages of their own, loaded on first use so that neither their SDKs
// nor a native binding are needed by anyone who does not name such a key:
//   pkcs11:token=…;object=…?module-path=…&pin-source=env:VAR     @waxseal/keys-pkcs11
//   awskms://[host:port]/<key-id|alias/name|arn>[?region=…]       @waxseal/keys-awskms
//   gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V   @waxseal/keys-gcpkms
// Other backends can plug in through registerKeyBackend().
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WaxsealError } from '@waxseal/core';
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

// The optional backend packages depend on this one, so they are named here, not imported.
const OPTIONAL_BACKENDS: Record<string, { pkg: string; open: string }> = {
  'pkcs11:': { pkg: '@waxseal/keys-pkcs11', open: 'openPkcs11Signer' },
  'awskms:': { pkg: '@waxseal/keys-awskms', open: 'openAwsKmsSigner' },
  'gcpkms:': { pkg: '@waxseal/keys-gcpkms', open: 'openGcpKmsSigner' },
};

for (const [scheme, { pkg, open }] of Object.entries(OPTIONAL_BACKENDS)) {
  registerKeyBackend(scheme, async (_u, raw) => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pkg)) as Record<string, unknown>;
    } catch (e) {
      throw new WaxsealError('ERR_CONFIG', `key ${scheme} needs the package ${pkg}: install it beside Waxseal (npm install ${pkg})`, {
        cause: e,
      });
    }
    const opener = mod[open] as ((raw: string) => Promise<Signer>) | undefined;
    if (typeof opener !== 'function') throw new WaxsealError('ERR_CONFIG', `${pkg} does not export ${open}`);
    return opener(raw);
  });
}

/** Opens the signer a key URI names. A bare path is treated as a file URI. */
export async function openSigner(uriOrPath: string): Promise<Signer> {
  const raw = /^[a-z][a-z0-9+.-]*:/i.test(uriOrPath)
    ? uriOrPath
    : `file://${uriOrPath.startsWith('/') ? '' : `${process.cwd()}/`}${uriOrPath}`;
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
