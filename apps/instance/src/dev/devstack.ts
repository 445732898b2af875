// The all-in-one dev instance: the embedded IdP, the CA, the TSA (and the transparency log) on one
// localhost port, with keys kept as files in a data folder so that bundles signed yesterday still
// verify today. It writes trusted_root.json, signing_config.json and instance.json into the folder.
//
// Routes on the one port:
//   /oidc/...                     dev OIDC provider (issuer <base>/oidc)
//   /api/v2/signingCert, ...      CA (Fulcio API v2)
//   /api/v1/timestamp, ...        TSA
//   /api/v1/log/..., /api/v2/...  transparency log (when enabled)
//   /trusted_root.json, /signing_config.json
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WaxsealError, encodePem, parseCertificatesPem, OID, type Certificate } from '@waxseal/core';
import { generateSigner, signerFromPem, selfSignedRoot, intermediateCa, tsaLeaf, type KeyObjectSigner } from '@waxseal/keys';
import { Router, requestListener, listen, type RunningServer, type Service } from '@waxseal/server';
import { DevIdentityProvider } from '@waxseal/dev-idp';
import { TsaService } from '@waxseal/tsa';
import {
  CaService,
  parseIssuerConfig,
  mergeIssuerConfigs,
  githubActionsIssuerConfig,
  issuerConfigFromObject,
  type IssuerConfig,
} from '@waxseal/ca';
import { parseSigningRules } from '@waxseal/signing-rules';
import { AuditLog, auditedSigner } from '@waxseal/audit';
import { caAuthorizer, caAuditor, tsaAuditor } from '../governance.ts';
import { LogService } from '@waxseal/rekor';
import { publishTrustDocuments } from '@waxseal/trust';
import {
  buildCertificateAuthority,
  buildRekorLogs,
  buildSigningConfig,
  buildTrustedRoot,
  type SigningConfig,
  type TransparencyLogInstance,
  type TrustedRoot,
} from '@waxseal/bundle';

export const DEFAULT_DEV_PORT = 7117;
export const DEFAULT_DEV_DATA = '.waxseal/dev';

export interface DevStackOptions {
  dataDir: string;
  port?: number;
  /** Loopback only unless the caller insists (dev mode must not face a network by accident). */
  host?: string;
  /** Run the transparency log too (default true when available). */
  log?: boolean;
}

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

const YEAR = 365 * 86_400_000;

interface KeyedChain {
  signer: KeyObjectSigner;
  /** Leaf-most first, root last. */
  chain: Certificate[];
}

function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
}

/** CA: a P-384 root (10 years) and a P-256 issuing intermediate (EKU codeSigning, pathLen 0). */
async function loadOrCreateCa(dir: string): Promise<KeyedChain> {
  mkdirSync(dir, { recursive: true });
  const chainFile = join(dir, 'chain.pem');
  const keyFile = join(dir, 'intermediate.key');
  if (existsSync(chainFile) && existsSync(keyFile)) {
    return {
      signer: signerFromPem(readFileSync(keyFile, 'utf8'), `file://${keyFile}`),
      chain: parseCertificatesPem(readFileSync(chainFile, 'utf8')),
    };
  }
  const rootSigner = generateSigner('ecdsa-p384', `file://${join(dir, 'root.key')}`);
  const root = await selfSignedRoot(rootSigner, {
    organization: 'waxseal.dev',
    commonName: 'Waxseal dev root CA',
    notAfter: new Date(Date.now() + 10 * YEAR),
    pathLen: 1,
  });
  const signer = generateSigner('ecdsa-p256', `file://${keyFile}`);
  const intermediate = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    organization: 'waxseal.dev',
    commonName: 'Waxseal dev intermediate CA',
    notAfter: new Date(Date.now() + 5 * YEAR),
    pathLen: 0,
    extKeyUsage: [OID.kpCodeSigning],
  });
  writePrivate(join(dir, 'root.key'), rootSigner.exportPkcs8Pem());
  writePrivate(keyFile, signer.exportPkcs8Pem());
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.der));
  writeFileSync(chainFile, encodePem('CERTIFICATE', intermediate.der) + encodePem('CERTIFICATE', root.der));
  return { signer, chain: [intermediate, root] };
}

/** TSA: a P-256 root and a TSA leaf (one critical EKU, timeStamping). */
async function loadOrCreateTsa(dir: string): Promise<KeyedChain> {
  mkdirSync(dir, { recursive: true });
  const chainFile = join(dir, 'chain.pem');
  const keyFile = join(dir, 'tsa.key');
  if (existsSync(chainFile) && existsSync(keyFile)) {
    return {
      signer: signerFromPem(readFileSync(keyFile, 'utf8'), `file://${keyFile}`),
      chain: parseCertificatesPem(readFileSync(chainFile, 'utf8')),
    };
  }
  const rootSigner = generateSigner('ecdsa-p256', 'memory://dev-tsa-root');
  const root = await selfSignedRoot(rootSigner, {
    organization: 'waxseal.dev',
    commonName: 'Waxseal dev TSA root',
    notAfter: new Date(Date.now() + 10 * YEAR),
    pathLen: 0,
  });
  const signer = generateSigner('ecdsa-p256', `file://${keyFile}`);
  const leaf = await tsaLeaf(signer.publicKeySpki, rootSigner, root, {
    organization: 'waxseal.dev',
    commonName: 'Waxseal dev TSA',
    notAfter: new Date(Date.now() + 5 * YEAR),
  });
  writePrivate(keyFile, signer.exportPkcs8Pem());
  writeFileSync(chainFile, encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', root.der));
  return { signer, chain: [leaf, root] };
}

/** The log key (Ed25519, as C2SP logs use) and the time the log's key became valid. */
function loadOrCreateLogKey(dir: string): { signer: KeyObjectSigner; since: Date } {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'log.key');
  const sinceFile = join(dir, 'key-valid-from');
  if (existsSync(keyFile) && existsSync(sinceFile)) {
    return {
      signer: signerFromPem(readFileSync(keyFile, 'utf8'), `file://${keyFile}`),
      since: new Date(readFileSync(sinceFile, 'utf8').trim()),
    };
  }
  const signer = generateSigner('ed25519', `file://${keyFile}`);
  const since = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  writePrivate(keyFile, signer.exportPkcs8Pem());
  writeFileSync(sinceFile, `${since.toISOString()}\n`);
  return { signer, since };
}

/**
 * The dev IdP as an email issuer, the dev CI provider as a GitHub Actions-style ci-provider
 * issuer, plus any issuers the operator lists in <data>/issuers.yaml.
 */
function issuerConfig(dataDir: string, devIssuer: string, ciIssuer: string): IssuerConfig {
  const extraFile = join(dataDir, 'issuers.yaml');
  const extra = existsSync(extraFile) ? readFileSync(extraFile, 'utf8') : '';
  const dev = issuerConfigFromObject(
    {
      'oidc-issuers': {
        [devIssuer]: { 'issuer-url': devIssuer, 'client-id': 'sigstore', type: 'email', description: 'waxseal dev identity provider' },
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
  const base = mergeIssuerConfigs(githubActionsIssuerConfig(), dev);
  return extra.trim() ? mergeIssuerConfigs(base, parseIssuerConfig(extra, { source: extraFile, include: [base] })) : base;
}

export function readDevInstance(dataDir: string): DevInstance {
  const file = join(resolve(dataDir), 'instance.json');
  if (!existsSync(file))
    throw new WaxsealError('ERR_CONFIG', `no dev instance in ${dataDir} (start one with \`waxseal dev --data ${dataDir}\`)`);
  return JSON.parse(readFileSync(file, 'utf8')) as DevInstance;
}

export async function startDevStack(opts: DevStackOptions): Promise<DevStack> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const host = opts.host ?? '127.0.0.1';
  const router = new Router();
  let server: RunningServer;
  try {
    server = await listen(requestListener({ router, maxBodyBytes: 4 << 20 }), opts.port ?? DEFAULT_DEV_PORT, host);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WaxsealError(
      'ERR_CONFIG',
      `cannot listen on ${host}:${opts.port ?? DEFAULT_DEV_PORT}${code === 'EADDRINUSE' ? ' (port in use; pass --port)' : ''}`,
      { cause: e },
    );
  }
  const base = server.url;
  const services: Service[] = [];
  const closers: (() => unknown)[] = [];
  try {
    const idp = await DevIdentityProvider.create({ devMode: true, issuer: `${base}/oidc`, dataDir: join(dataDir, 'idp') });
    const ciIdp = await DevIdentityProvider.create({
      devMode: true,
      issuer: `${base}/ci`,
      dataDir: join(dataDir, 'idp'),
      customClaims: true,
    });
    services.push(idp, ciIdp);
    const auditDb = join(dataDir, 'audit.db');
    const audit = await AuditLog.open(auditDb);
    closers.push(() => audit.close());
    const rulesFile = join(dataDir, 'signing-rules.yaml');
    const rules = existsSync(rulesFile) ? parseSigningRules(readFileSync(rulesFile, 'utf8')) : undefined;
    const ca = await loadOrCreateCa(join(dataDir, 'ca'));
    const tsa = await loadOrCreateTsa(join(dataDir, 'tsa'));
    const caService = await CaService.create({
      signer: ca.signer,
      chain: ca.chain,
      issuers: issuerConfig(dataDir, idp.issuer, ciIdp.issuer),
      audit: caAuditor(audit),
      ...(rules ? { authorize: caAuthorizer(rules) } : {}),
    });
    const tsaService = await TsaService.create({ signer: tsa.signer, chain: tsa.chain, audit: tsaAuditor(audit) });
    services.push(caService, tsaService);

    // The transparency log: one tree behind the Rekor v1 and v2 APIs and the tile read API, on
    // this same port; its origin is this host name, as Rekor v2 clients expect.
    const tlogs: TransparencyLogInstance[] = [];
    let logUrl: string | undefined;
    if (opts.log !== false) {
      const key = loadOrCreateLogKey(join(dataDir, 'log'));
      const log = await LogService.create({
        dataDir: join(dataDir, 'log'),
        signer: auditedSigner(key.signer, audit, { actor: 'log', action: 'log.sign' }),
        hostname: new URL(base).hostname,
        batchMaxDelayMs: 10,
      });
      services.push(log);
      const ids = buildRekorLogs({
        origin: new URL(base).hostname,
        publicKey: key.signer.publicKeySpki,
        validFor: { start: key.since },
        v1BaseUrl: base,
      });
      tlogs.push(ids.v1, ids.v2);
      logUrl = base;
    }

    const root = buildTrustedRoot({
      certificateAuthorities: [buildCertificateAuthority({ uri: base, chain: ca.chain })],
      timestampAuthorities: [buildCertificateAuthority({ uri: `${base}/api/v1/timestamp`, chain: tsa.chain })],
      tlogs,
    });
    const sc = buildSigningConfig({
      operator: 'waxseal.dev',
      validFrom: ca.chain[0]!.notBefore,
      caUrl: base,
      oidcUrl: idp.issuer,
      tsaUrl: `${base}/api/v1/timestamp`,
      ...(logUrl
        ? {
            rekor: [
              { url: logUrl, majorApiVersion: 2 as const },
              { url: logUrl, majorApiVersion: 1 as const },
            ],
          }
        : {}),
    });

    for (const s of services) s.mount(router);
    const { trustedRootPath, signingConfigPath, tuf } = await publishTrustDocuments({
      router,
      baseUrl: base,
      dataDir,
      trustedRoot: root,
      signingConfig: sc,
      tufKeysDir: join(dataDir, 'tuf-keys'),
    });
    const instance: DevInstance = {
      url: base,
      issuer: idp.issuer,
      ciIssuer: ciIdp.issuer,
      auditDb,
      tufUrl: tuf!.url,
      tufRootPath: tuf!.initialRootPath,
      caUrl: base,
      tsaUrl: `${base}/api/v1/timestamp`,
      logUrl,
      dataDir,
      trustedRootPath,
      signingConfigPath,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(dataDir, 'instance.json'), `${JSON.stringify(instance, null, 2)}\n`);
    return {
      ...instance,
      trustedRoot: root,
      signingConfig: sc,
      async close() {
        await server.close();
        for (const s of services) await s.close();
        for (const c of closers) await c();
      },
    };
  } catch (e) {
    await server.close();
    for (const s of services) await s.close().catch(() => {});
    for (const c of closers) await Promise.resolve(c()).catch(() => {});
    throw e;
  }
}
