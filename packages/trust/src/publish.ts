// Publishing an instance's trust documents through its TUF repository: keys for the four roles
// kept as files next to the repository, targets republished when they change, timestamp
// refreshed on every start. Used by the dev instance; a production instance keeps the root key
// offline and runs the same steps with HSM/KMS signers for the online roles.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { generateSigner, signerFromPem, writeSecretFile, type KeyObjectSigner } from '@waxseal/keys';
import {
  parseSigningConfig,
  parseTrustedRoot,
  serializeSigningConfig,
  serializeTrustedRoot,
  type SigningConfig,
  type TrustedRoot,
} from '@waxseal/bundle';
import { TufRepository, TufService } from './tuf/index.ts';
import type { Router } from '@waxseal/server';

function fileKey(dir: string, role: string): KeyObjectSigner {
  const path = join(dir, `${role}.key`);
  if (existsSync(path)) return signerFromPem(readFileSync(path, 'utf8'), `file://${path}`);
  const s = generateSigner('ed25519', `file://${path}`);
  // A new 0600 file whatever the umask; a symlink left at the path is refused, not followed.
  writeSecretFile(path, s.exportPkcs8Pem());
  return s;
}

export interface PublishedTuf {
  directory: string;
  /** The initial root clients pin (1.root.json). */
  initialRootPath: string;
  rootVersion: number;
  targetsVersion: number;
}

/** Creates or updates the repository in `<dir>` so that it publishes exactly `targets`. */
export async function publishTrustTargets(dir: string, keysDir: string, targets: Record<string, Uint8Array>): Promise<PublishedTuf> {
  mkdirSync(dir, { recursive: true });
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const root = fileKey(keysDir, 'root');
  const online = {
    targetsSigner: fileKey(keysDir, 'targets'),
    snapshotSigner: fileKey(keysDir, 'snapshot'),
    timestampSigner: fileKey(keysDir, 'timestamp'),
  };
  const repo = new TufRepository(dir, online);
  let status;
  if (!existsSync(join(dir, '1.root.json'))) {
    status = await repo.init({ rootSigners: [root], ...online, targets });
  } else {
    status = await repo.status();
    const changed = Object.entries(targets).some(
      ([name, bytes]) => status!.targets[name]?.sha256 !== createHash('sha256').update(bytes).digest('hex'),
    );
    status = changed ? await repo.addTargets(targets) : await repo.refreshTimestamp();
  }
  return {
    directory: dir,
    initialRootPath: join(dir, '1.root.json'),
    rootVersion: status.rootVersion,
    targetsVersion: status.targetsVersion,
  };
}

export interface TrustDocumentsPublished {
  trustedRootPath: string;
  signingConfigPath: string;
  /** Set when a TUF repository publishes them too. */
  tuf?: { url: string; initialRootPath: string };
}

/**
 * Writes trusted_root.json and signing_config.json into `dataDir` (serialized by
 * @waxseal/bundle), serves them at /trusted_root.json and /signing_config.json, and, given TUF
 * role keys, publishes them as targets of the instance's TUF repository served under /tuf.
 */
export async function publishTrustDocuments(o: {
  router: Router;
  baseUrl: string;
  dataDir: string;
  trustedRoot: TrustedRoot;
  signingConfig: SigningConfig;
  tufKeysDir?: string;
}): Promise<TrustDocumentsPublished> {
  const rootJson = serializeTrustedRoot(o.trustedRoot);
  const scJson = serializeSigningConfig(o.signingConfig);
  // Never publish what clients would refuse: the documents must read back with our own parsers.
  parseTrustedRoot(rootJson);
  parseSigningConfig(scJson);
  const rootBytes = Buffer.from(`${JSON.stringify(rootJson, null, 2)}\n`);
  const scBytes = Buffer.from(`${JSON.stringify(scJson, null, 2)}\n`);
  const trustedRootPath = join(o.dataDir, 'trusted_root.json');
  const signingConfigPath = join(o.dataDir, 'signing_config.json');
  writeFileSync(trustedRootPath, rootBytes);
  writeFileSync(signingConfigPath, scBytes);
  const serve = (bytes: Uint8Array) => () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: bytes });
  o.router.get('/trusted_root.json', serve(rootBytes));
  o.router.get('/signing_config.json', serve(scBytes));
  if (!o.tufKeysDir) return { trustedRootPath, signingConfigPath };
  const tuf = await publishTrustTargets(join(o.dataDir, 'tuf'), o.tufKeysDir, {
    'trusted_root.json': rootBytes,
    'signing_config.v0.2.json': scBytes,
    'signing_config.json': scBytes,
  });
  new TufService({ directory: tuf.directory, prefix: '/tuf' }).mount(o.router);
  return { trustedRootPath, signingConfigPath, tuf: { url: `${o.baseUrl}/tuf`, initialRootPath: tuf.initialRootPath } };
}
