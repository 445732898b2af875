// The all-in-one dev instance: the dev profile (profile.ts) started by the instance's one
// composition root (startInstance): the embedded IdPs, the CA, the TSA (and the transparency log)
// on one localhost port, keys kept as files in a data folder. Besides trusted_root.json and
// signing_config.json it writes instance.json, which `waxseal env` and `waxseal dev token` read.
//
// Routes on the one port:
//   /oidc/..., /ci/...            dev OIDC providers (people; CI jobs)
//   /api/v2/signingCert, ...      CA (Fulcio API v2)
//   /api/v1/timestamp, ...        TSA
//   /api/v1/log/..., /api/v2/...  transparency log (when enabled)
//   /trusted_root.json, /signing_config.json, /tuf/...
//   /                             landing page (landing.ts)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import type { SigningConfig, TrustedRoot } from '@waxseal/bundle';
import { startInstance } from '../instance.ts';
import { devProfile, type DevProfileOptions } from './profile.ts';
import { landingService } from './landing.ts';

export { DEFAULT_DEV_DATA, DEFAULT_DEV_PORT } from './profile.ts';

export type DevStackOptions = DevProfileOptions;

export interface DevInstance {
  url: string;
  issuer: string;
  /** The dev CI provider (tokens with GitHub Actions-style claims). */
  ciIssuer: string;
  auditDb: string;
  /** TUF mirror serving trusted_root.json and the signing config, and the root to pin. */
  tufUrl: string;
  tufRootPath: string;
  caUrl: string;
  tsaUrl: string;
  logUrl?: string | undefined;
  dataDir: string;
  trustedRootPath: string;
  signingConfigPath: string;
  pid: number;
  startedAt: string;
}

export interface DevStack extends DevInstance {
  trustedRoot: TrustedRoot;
  signingConfig: SigningConfig;
  close(): Promise<void>;
}

export function readDevInstance(dataDir: string): DevInstance {
  const file = join(resolve(dataDir), 'instance.json');
  if (!existsSync(file))
    throw new WaxsealError('ERR_CONFIG', `no dev instance in ${dataDir} (start one with \`waxseal dev --data ${dataDir}\`)`);
  return JSON.parse(readFileSync(file, 'utf8')) as DevInstance;
}

export async function startDevStack(opts: DevStackOptions): Promise<DevStack> {
  const profile = await devProfile(opts);
  // The landing page at `/` shows the facts below, known once the instance runs.
  let facts: DevInstance | undefined;
  const withLanding = async (url: string) => {
    const extras = await profile.options.extraServices!(url);
    return { ...extras, services: [...extras.services, landingService(() => facts)] };
  };
  const inst = await startInstance(profile.config, { ...profile.options, extraServices: withLanding });
  try {
    const { issuer, ciIssuer } = profile.identityProviders();
    const instance: DevInstance = {
      url: inst.url,
      issuer,
      ciIssuer,
      auditDb: inst.auditDb,
      tufUrl: inst.tufUrl!,
      tufRootPath: inst.tufRootPath!,
      caUrl: inst.url,
      tsaUrl: inst.tsaUrl,
      logUrl: inst.logUrl,
      dataDir: profile.dataDir,
      trustedRootPath: inst.trustedRootPath,
      signingConfigPath: inst.signingConfigPath,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(profile.dataDir, 'instance.json'), `${JSON.stringify(instance, null, 2)}\n`);
    facts = instance;
    return { ...instance, trustedRoot: inst.trustedRoot, signingConfig: inst.signingConfig, close: () => inst.close() };
  } catch (e) {
    await inst.close();
    throw e;
  }
}
