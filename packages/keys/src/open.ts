// Opens a signer from a key URI. Backends register here; the configuration names keys only by URI.
//   file:///path/key.pem[?passphrase-env=VAR|passphrase-file=/path]   PEM on disk
//   file://dir/key.pem, file:dir/key.pem                              the same, relative (as `ca init
//                                                                     --out dir` prints it): to the
//                                                                     configuration file, or the
//                                                                     working folder on the command line
//   memory://ephemeral[?kind=ecdsa-p256|ecdsa-p384|ed25519]            generated at start (dev only)
// HSM and KMS backends live in packages of their own, loaded on first use so that neither their SDKs
// nor a native binding are needed by anyone who does not name such a key:
//   pkcs11:token=…;object=…?module-path=…&pin-source=env:VAR     @waxseal/keys-pkcs11
//   awskms://[host:port]/<key-id|alias/name|arn>[?region=…]       @waxseal/keys-awskms
//   gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V   @waxseal/keys-gcpkms
// Other backends can plug in through registerKeyBackend().
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new WaxsealError('ERR_CONFIG', `cannot read passphrase file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  return undefined;
}

registerKeyBackend('file:', async (u, raw) => {
  const path = fileURLToPath(raw.split('?')[0]!);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read key file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e });
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

const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

function decodePath(p: string, uri: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new WaxsealError('ERR_CONFIG', `invalid key URI ${uri}: bad percent-escape in the path`);
  }
}

/**
 * Makes a key reference absolute: a bare path or a `file:` URI with a relative path (`file://ca/x.key`,
 * as `ca init --out ca` prints it, or `file:ca/x.key`) becomes `file:///<baseDir>/ca/x.key`, as does
 * a relative `passphrase-file`. `file:///abs` and `file://localhost/abs` are absolute; any other
 * scheme passes through unchanged.
 */
export function resolveKeyUri(uriOrPath: string, baseDir: string): string {
  if (!HAS_SCHEME.test(uriOrPath)) return pathToFileURL(resolve(baseDir, uriOrPath)).href;
  if (!/^file:/i.test(uriOrPath)) return uriOrPath;
  const q = uriOrPath.indexOf('?');
  const rest = uriOrPath.slice('file:'.length, q < 0 ? undefined : q);
  const query = q < 0 ? '' : uriOrPath.slice(q + 1);
  let path: string;
  if (rest.startsWith('///')) path = rest.slice(2);
  else if (/^\/\/localhost\//i.test(rest)) path = rest.slice('//localhost'.length);
  else if (rest.startsWith('//')) path = rest.slice(2);
  else path = rest;
  path = decodePath(path, uriOrPath);
  if (path === '' || path.endsWith('/')) throw new WaxsealError('ERR_CONFIG', `key URI ${uriOrPath} names no file`);
  const out = new URL(pathToFileURL(resolve(baseDir, path)).href);
  if (query) {
    const params = new URLSearchParams(query);
    const pf = params.get('passphrase-file');
    if (pf && !isAbsolute(pf)) params.set('passphrase-file', resolve(baseDir, pf));
    out.search = params.toString();
  }
  return out.href;
}

/**
 * Opens the signer a key URI names. A bare path, or a `file:` URI with a relative path, is
 * relative to the working folder (resolve it against another folder first with resolveKeyUri).
 */
export async function openSigner(uriOrPath: string): Promise<Signer> {
  const raw = resolveKeyUri(uriOrPath, process.cwd());
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
