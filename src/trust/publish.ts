// Publishing an instance's trust documents through its TUF repository: keys for the four roles
// kept as files next to the repository, targets republished when they change, timestamp
// refreshed on every start. Used by the dev instance; a production instance keeps the root key
// offline and runs the same steps with HSM/KMS signers for the online roles.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { generateSigner, signerFromPem, type KeyObjectSigner } from '../keys/memory.ts';
import { TufRepository } from './tuf/index.ts';

function fileKey(dir: string, role: string): KeyObjectSigner {
  const path = join(dir, `${role}.key`);
  if (existsSync(path)) return signerFromPem(readFileSync(path, 'utf8'), `file://${path}`);
  const s = generateSigner('ed25519', `file://${path}`);
  writeFileSync(path, s.exportPkcs8Pem(), { mode: 0o600 });
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
  const online = { targetsSigner: fileKey(keysDir, 'targets'), snapshotSigner: fileKey(keysDir, 'snapshot'), timestampSigner: fileKey(keysDir, 'timestamp') };
  const repo = new TufRepository(dir, online);
  let status;
  if (!existsSync(join(dir, '1.root.json'))) {
    status = await repo.init({ rootSigners: [root], ...online, targets });
  } else {
    status = await repo.status();
    const changed = Object.entries(targets).some(([name, bytes]) => status!.targets[name]?.sha256 !== createHash('sha256').update(bytes).digest('hex'));
    status = changed ? await repo.addTargets(targets) : await repo.refreshTimestamp();
  }
  return { directory: dir, initialRootPath: join(dir, '1.root.json'), rootVersion: status.rootVersion, targetsVersion: status.targetsVersion };
}
