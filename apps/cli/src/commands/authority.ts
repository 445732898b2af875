// What `waxseal ca` and `waxseal tsa` share in setting up and rotating an authority's chain: the
// set-up folder, the signing key (any key URI, or a new file key), the offline root, the chain
// files and the --years options.
import { writeFileSync, mkdirSync, readFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError, parseCertificatesPem, type Certificate } from '@waxseal/core';
import {
  checkSecretFileTarget,
  openSigner,
  generateSigner,
  signerFromPem,
  writeSecretFile,
  type KeyObjectSigner,
  type SecretFileOptions,
  type Signer,
} from '@waxseal/keys';
import { UsageError } from '../ui.ts';

/** Public files (certificates, CSRs); private keys go through writeSecretFile. */
export function writePublicFile(path: string, text: string): void {
  try {
    writeFileSync(path, text, { mode: 0o644 });
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** A validity option: a whole number of years from 1 to 50, `dflt` when not given. */
export function years(v: string | undefined, dflt: number, flag: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new UsageError(`${flag} must be a whole number of years (1-50)`);
  return n;
}

/**
 * The folder `init` writes to: created if need be; an existing chain.pem is refused unless
 * --force, and so is any of `keyFiles` that could not be written as a new secret file. Every key
 * path is checked before anything is written: no half-made authority on a refusal. Returns the
 * options to write the key files with.
 */
export function prepareInitDir(out: string, force: boolean, keyFiles: string[]): SecretFileOptions {
  mkdirSync(out, { recursive: true });
  const secret = { force, forceHint: 'pass --force to replace it' };
  if (!force && existsSync(join(out, 'chain.pem')))
    throw new WaxsealError('ERR_CONFLICT', `${out}/chain.pem exists; pass --force to replace it`);
  for (const f of keyFiles) checkSecretFileTarget(f, secret);
  return secret;
}

/** The authority's signing key: --key when given, else a new P-256 key written to `path`. */
export async function signingKey(
  key: string | undefined,
  path: string,
  secret: SecretFileOptions = {},
): Promise<{ signer: Signer; uri: string }> {
  if (key) return { signer: await openSigner(key), uri: key };
  const gen = generateSigner('ecdsa-p256', `file://${path}`);
  writeSecretFile(path, gen.exportPkcs8Pem(), secret);
  return { signer: gen, uri: `file://${path}` };
}

/** For `rotate`: the root certificate in `dir`/root.pem and its private key from `rootKeyFile`. */
export function loadRoot(dir: string, rootKeyFile: string, passphrase?: string): { root: Certificate; rootSigner: KeyObjectSigner } {
  const root = parseCertificatesPem(readFileSync(join(dir, 'root.pem'), 'utf8'))[0];
  if (!root) throw new WaxsealError('ERR_CONFIG', `${dir}/root.pem holds no certificate`);
  return { root, rootSigner: signerFromPem(readFileSync(rootKeyFile, 'utf8'), `file://${rootKeyFile}`, passphrase) };
}

/** For `rotate`: keeps the current `dir`/chain.pem as chain-<stamp>.pem and writes the new one; returns the kept file. */
export function replaceChain(dir: string, stamp: string, chainPem: string): string {
  const retiredPath = join(dir, `chain-${stamp}.pem`);
  if (existsSync(join(dir, 'chain.pem'))) renameSync(join(dir, 'chain.pem'), retiredPath);
  writePublicFile(join(dir, 'chain.pem'), chainPem);
  return retiredPath;
}
