// The dev profile of the instance: key material bootstrapped as files in the data folder on first
// start (so that bundles signed yesterday still verify today), an InstanceConfig naming them by
// file:// URI, and what only dev mode has: the dev identity providers on the same listener, their
// issuers trusted by the CA and named in the signing config, and a log that batches quickly.
//
// The data folder (docs/configuration.md, "Dev mode"):
//   ca/root.key, ca/intermediate.key, ca/root.pem, ca/chain.pem    dev CA (P-384 root, P-256 intermediate)
//   tsa/tsa.key, tsa/chain.pem                                      dev TSA (its root key is not kept)
//   log/log.key, log/key-valid-from, log/...                        the log key and the log's data
//   tuf-keys/, tuf/, idp/, audit.db, issuers.yaml, signing-rules.yaml
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WaxsealError, encodePem, OID, isWaxsealError, type Certificate } from '@waxseal/core';
import {
  checkSecretFileTarget,
  generateSigner,
  intermediateCa,
  selfSignedRoot,
  tsaLeaf,
  writeSecretFile,
  type Signer,
} from '@waxseal/keys';
import { DevIdentityProvider } from '@waxseal/dev-idp';
import { githubActionsIssuerConfig, issuerConfigFromObject, type IssuerConfig } from '@waxseal/ca';
import type { InstanceConfig } from '../config.ts';
import type { InstanceOptions } from '../instance.ts';

export const DEFAULT_DEV_PORT = 7117;
export const DEFAULT_DEV_DATA = '.waxseal/dev';

export interface DevProfileOptions {
  dataDir: string;
  port?: number;
  /** Loopback only unless the caller insists (dev mode must not face a network by accident). */
  host?: string;
  /** Run the transparency log too (default true). */
  log?: boolean;
}

export interface DevProfile {
  dataDir: string;
  config: InstanceConfig;
  options: InstanceOptions;
  /** The dev identity providers' issuers, once the instance has started them. */
  identityProviders(): { issuer: string; ciIssuer: string };
}

const YEAR = 365 * 86_400_000;

/** Key folders hold private keys: the owner's alone (on creation; an existing folder is left as is). */
const keyFolder = (dir: string) => mkdirSync(dir, { recursive: true, mode: 0o700 });

/**
 * Checks that the new key files of an unfinished bootstrap can be written, before any is:
 * a key left without its chain (an interrupted first start, or a file put there) is never replaced.
 */
function checkNewKeys(paths: string[], marker: string): void {
  for (const p of paths) {
    try {
      checkSecretFileTarget(p);
    } catch (e) {
      if (isWaxsealError(e) && e.code === 'ERR_CONFLICT')
        throw new WaxsealError(
          'ERR_CONFLICT',
          `${e.message}; ${marker} is missing, so the dev key material is incomplete: remove it to start over`,
        );
      throw e;
    }
  }
}

/** What a dev authority's chain is made of; see bootstrapChain. */
interface DevChain {
  /** The signing key's file in the folder. */
  keyFile: string;
  /** The root key's file, with root.pem beside it; without one, the root key is not kept. */
  rootKeyFile?: string;
  root: { kind: 'ecdsa-p384' | 'ecdsa-p256'; commonName: string; pathLen: number };
  commonName: string;
  /** Issues the signing key's certificate (valid 5 years) from the root (valid 10 years). */
  issue(
    spki: Uint8Array,
    rootSigner: Signer,
    root: Certificate,
    o: { organization: string; commonName: string; notAfter: Date },
  ): Promise<Certificate>;
}

/**
 * Makes an authority's key material on first start: a root and, under it, a certificate for a new
 * P-256 signing key, the chain last (with it present, the authority is complete).
 */
async function bootstrapChain(dir: string, c: DevChain): Promise<void> {
  keyFolder(dir);
  const chainFile = join(dir, 'chain.pem');
  const keyFile = join(dir, c.keyFile);
  const rootKeyFile = c.rootKeyFile === undefined ? undefined : join(dir, c.rootKeyFile);
  if (existsSync(chainFile) && existsSync(keyFile)) return;
  checkNewKeys(rootKeyFile ? [rootKeyFile, keyFile] : [keyFile], chainFile);
  // A root key that is not kept is named after its folder (memory://dev-tsa-root).
  const rootSigner = generateSigner(c.root.kind, rootKeyFile ? pathToFileURL(rootKeyFile).href : `memory://dev-${basename(dir)}-root`);
  const root = await selfSignedRoot(rootSigner, {
    organization: 'waxseal.dev',
    commonName: c.root.commonName,
    notAfter: new Date(Date.now() + 10 * YEAR),
    pathLen: c.root.pathLen,
  });
  const signer = generateSigner('ecdsa-p256', pathToFileURL(keyFile).href);
  const cert = await c.issue(signer.publicKeySpki, rootSigner, root, {
    organization: 'waxseal.dev',
    commonName: c.commonName,
    notAfter: new Date(Date.now() + 5 * YEAR),
  });
  if (rootKeyFile) writeSecretFile(rootKeyFile, rootSigner.exportPkcs8Pem());
  writeSecretFile(keyFile, signer.exportPkcs8Pem());
  if (rootKeyFile) writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.der));
  writeFileSync(chainFile, encodePem('CERTIFICATE', cert.der) + encodePem('CERTIFICATE', root.der));
}

/** CA: a P-384 root and a P-256 issuing intermediate (EKU codeSigning, pathLen 0). */
const bootstrapCa = (dir: string) =>
  bootstrapChain(dir, {
    keyFile: 'intermediate.key',
    rootKeyFile: 'root.key',
    root: { kind: 'ecdsa-p384', commonName: 'Waxseal dev root CA', pathLen: 1 },
    commonName: 'Waxseal dev intermediate CA',
    issue: (spki, rootSigner, root, o) => intermediateCa(spki, rootSigner, root, { ...o, pathLen: 0, extKeyUsage: [OID.kpCodeSigning] }),
  });

/** TSA: a P-256 root (its key is not kept) and a TSA leaf (one critical EKU, timeStamping). */
const bootstrapTsa = (dir: string) =>
  bootstrapChain(dir, {
    keyFile: 'tsa.key',
    root: { kind: 'ecdsa-p256', commonName: 'Waxseal dev TSA root', pathLen: 0 },
    commonName: 'Waxseal dev TSA',
    issue: tsaLeaf,
  });

/**
 * The log key (Ed25519, as C2SP logs use) and the time it became valid, which the instance reads
 * from key-valid-from in the log's folder (it writes one itself if the file is missing).
 */
function bootstrapLogKey(dir: string): void {
  keyFolder(dir);
  const keyFile = join(dir, 'log.key');
  if (existsSync(keyFile)) return;
  const signer = generateSigner('ed25519', pathToFileURL(keyFile).href);
  writeSecretFile(keyFile, signer.exportPkcs8Pem());
  writeFileSync(join(dir, 'key-valid-from'), `${new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString()}\n`);
}

/** The dev IdP as an email issuer and the dev CI provider as a GitHub Actions-style ci-provider issuer. */
function devIssuers(issuer: string, ciIssuer: string): IssuerConfig {
  return issuerConfigFromObject(
    {
      'oidc-issuers': {
        [issuer]: { 'issuer-url': issuer, 'client-id': 'sigstore', type: 'email', description: 'waxseal dev identity provider' },
        [ciIssuer]: {
          'issuer-url': ciIssuer,
          'client-id': 'sigstore',
          type: 'ci-provider',
          'ci-provider': 'github-workflow',
          description: 'waxseal dev CI provider (GitHub Actions claims)',
        },
      },
    },
    { source: 'dev identity providers', include: [githubActionsIssuerConfig()] },
  );
}

/** Bootstraps the dev key material in `opts.dataDir` (first start only) and describes the dev instance. */
export async function devProfile(opts: DevProfileOptions): Promise<DevProfile> {
  const dataDir = resolve(opts.dataDir);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `data folder ${dataDir}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const withLog = opts.log !== false;
  await bootstrapCa(join(dataDir, 'ca'));
  await bootstrapTsa(join(dataDir, 'tsa'));
  if (withLog) bootstrapLogKey(join(dataDir, 'log'));

  // Operator additions, as before: more issuers to trust, and who may sign.
  const issuersFile = join(dataDir, 'issuers.yaml');
  const hasIssuers = existsSync(issuersFile) && readFileSync(issuersFile, 'utf8').trim() !== '';
  const rulesFile = join(dataDir, 'signing-rules.yaml');
  const host = opts.host ?? '127.0.0.1';
  const fileUri = (...p: string[]) => pathToFileURL(join(dataDir, ...p)).href;
  const config: InstanceConfig = {
    listen: { host, port: opts.port ?? DEFAULT_DEV_PORT },
    url: undefined,
    data: dataDir,
    operator: 'waxseal.dev',
    ca: {
      key: fileUri('ca', 'intermediate.key'),
      chain: join(dataDir, 'ca', 'chain.pem'),
      retired: [],
      issuers: hasIssuers ? issuersFile : undefined,
      githubActions: true,
      signingRules: existsSync(rulesFile) ? rulesFile : undefined,
    },
    tsa: { key: fileUri('tsa', 'tsa.key'), chain: join(dataDir, 'tsa', 'chain.pem'), retired: [] },
    log: withLog ? { key: fileUri('log', 'log.key'), hostname: host, treeId: undefined, retired: [] } : undefined,
    tuf: { keys: join(dataDir, 'tuf-keys') },
    audit: { db: join(dataDir, 'audit.db'), anchor: undefined },
  };

  let ids: { issuer: string; ciIssuer: string } | undefined;
  const options: InstanceOptions = {
    // One tree, directly in <data>/log (dev folders made before the per-key shards keep working);
    // a short batch delay keeps interactive signing snappy.
    log: { dataDir: join(dataDir, 'log'), batchMaxDelayMs: 10 },
    async extraServices(url) {
      const idpDir = join(dataDir, 'idp');
      const idp = await DevIdentityProvider.create({ devMode: true, issuer: `${url}/oidc`, dataDir: idpDir });
      let ci: DevIdentityProvider;
      try {
        ci = await DevIdentityProvider.create({ devMode: true, issuer: `${url}/ci`, dataDir: idpDir, customClaims: true });
      } catch (e) {
        await idp.close();
        throw e;
      }
      ids = { issuer: idp.issuer, ciIssuer: ci.issuer };
      return { services: [idp, ci], issuers: devIssuers(idp.issuer, ci.issuer), oidcUrl: idp.issuer };
    },
  };
  return {
    dataDir,
    config,
    options,
    identityProviders() {
      if (!ids) throw new WaxsealError('ERR_INTERNAL', 'the dev identity providers have not started');
      return ids;
    },
  };
}
