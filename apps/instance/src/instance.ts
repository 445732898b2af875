// The instance: CA, TSA, (log), TUF and the trust documents on one listener, every key opened by
// URI (file, PKCS#11, AWS KMS, GCP KMS), every chain checked at start. Retired chains and keys stay
// in trusted_root.json with an end to their validity, so signatures made before a rotation keep
// verifying. This is the only composition root: `waxseal serve` starts it from a configuration
// file, the dev instance from its profile (dev/profile.ts), which adds its identity providers.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError, parseCertificatesPem, toHex, sha256, type Certificate } from '@waxseal/core';
import {
  buildCertificateAuthority,
  buildRekorLogs,
  buildSigningConfig,
  buildTrustedRoot,
  type CertificateAuthority,
  type SigningConfig,
  type TransparencyLogInstance,
  type TrustedRoot,
} from '@waxseal/bundle';
import { openSigner, type Signer } from '@waxseal/keys';
import { Router, requestListener, listen, type RunningServer, type Service } from '@waxseal/server';
import { CaService, loadIssuerConfigFile, githubActionsIssuerConfig, mergeIssuerConfigs, type IssuerConfig } from '@waxseal/ca';
import { TsaService } from '@waxseal/tsa';
import { parseSigningRules } from '@waxseal/signing-rules';
import { AuditLog, auditedSigner } from '@waxseal/audit';
import { LogService } from '@waxseal/rekor';
import { publishTrustDocuments } from '@waxseal/trust';
import { caAuditor, caAuthorizer, tsaAuditor } from './governance.ts';
import type { InstanceConfig, RetiredChain, RetiredKey } from './config.ts';

export interface RunningInstance {
  url: string;
  trustedRoot: TrustedRoot;
  signingConfig: SigningConfig;
  trustedRootPath: string;
  signingConfigPath: string;
  tufUrl: string | undefined;
  tufRootPath: string | undefined;
  tsaUrl: string;
  /** Set when the instance runs the transparency log. */
  logUrl: string | undefined;
  auditDb: string;
  close(): Promise<void>;
}

/** What a profile adds once the listener's URL is known (the dev profile: its identity providers). */
export interface InstanceExtras {
  /** Mounted on the instance's listener before the CA, TSA and log, closed with the instance. */
  services: Service[];
  /** More OIDC issuers for the CA, merged after the built-in GitHub Actions one and before ca.issuers. */
  issuers?: IssuerConfig;
  /** The OIDC provider signing_config.json names. */
  oidcUrl?: string;
}

/** How a profile adjusts the one composition root; `waxseal serve` passes none. */
export interface InstanceOptions {
  /** Services whose configuration depends on the listener's URL (issuer URLs), and what they add. */
  extraServices?: (url: string) => Promise<InstanceExtras>;
  log?: {
    /** The log's data folder (default: <data>/log/<key id>, one shard per log key). */
    dataDir?: string;
    /** Longest wait before a batch of entries is sequenced (default: the log's). */
    batchMaxDelayMs?: number;
  };
}

function readChain(path: string, what: string): Certificate[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const chain = parseCertificatesPem(text);
  if (chain.length === 0) throw new WaxsealError('ERR_CONFIG', `${what} ${path} holds no certificates`);
  return chain;
}

/** Trust-root entries for the current chain and every retired one (which ends at its `end`). */
function authorityEntries(uri: string, current: Certificate[], retired: RetiredChain[], what: string): CertificateAuthority[] {
  const entries = retired.map((r) =>
    buildCertificateAuthority({ uri, chain: readChain(r.chain, `retired ${what} chain`), validFor: { end: new Date(r.end) } }),
  );
  // The current chain is trusted from its certificate's start; windows may overlap (clients
  // accept overlapping windows), so signatures made during a rotation verify either way.
  entries.push(buildCertificateAuthority({ uri, chain: current }));
  return entries;
}

/** Trust-root entries (v1 and v2 views) for a retired log key, valid until its end. */
function retiredLogEntries(r: RetiredKey, baseUrl: string, hostname: string): TransparencyLogInstance[] {
  let pem: string;
  try {
    pem = readFileSync(r.publicKey, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read retired log key ${r.publicKey}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const { v1, v2 } = buildRekorLogs({
    origin: hostname,
    publicKey: pem,
    validFor: { start: new Date(r.start), end: new Date(r.end) },
    v1BaseUrl: baseUrl,
  });
  return [v1, v2];
}

function listenError(e: unknown, host: string, port: number): WaxsealError {
  const code = (e as NodeJS.ErrnoException).code;
  return new WaxsealError(
    'ERR_CONFIG',
    `cannot listen on ${host}:${port}: ${code ?? String(e)}${code === 'EADDRINUSE' ? ' (port in use: pick another port)' : ''}`,
    { cause: e },
  );
}

/**
 * The one composition root of an instance: `waxseal serve` (a configuration file) and the dev
 * instance (apps/instance/src/dev/profile.ts: keys bootstrapped as files, plus `opts`) both start
 * here.
 */
export async function startInstance(cfg: InstanceConfig, opts: InstanceOptions = {}): Promise<RunningInstance> {
  mkdirSync(cfg.data, { recursive: true });
  const signers: Signer[] = [];
  const services: Service[] = [];
  const closers: (() => Promise<unknown> | unknown)[] = [];
  let server: RunningServer | undefined;
  try {
    const caSigner = await openSigner(cfg.ca.key);
    signers.push(caSigner);
    const tsaSigner = await openSigner(cfg.tsa.key);
    signers.push(tsaSigner);
    const caChain = readChain(cfg.ca.chain, 'CA chain');
    const tsaChain = readChain(cfg.tsa.chain, 'TSA chain');

    const audit = await AuditLog.open(cfg.audit.db, cfg.audit.anchor ? { anchorPath: cfg.audit.anchor } : {});
    closers.push(() => audit.close());
    const rules = cfg.ca.signingRules ? parseSigningRules(readFileSync(cfg.ca.signingRules, 'utf8')) : undefined;

    const router = new Router();
    try {
      server = await listen(requestListener({ router, maxBodyBytes: 10 << 20 }), cfg.listen.port, cfg.listen.host);
    } catch (e) {
      throw listenError(e, cfg.listen.host, cfg.listen.port);
    }
    const url = cfg.url ?? server.url;
    const tsaUrl = `${url}/api/v1/timestamp`;
    const extras = opts.extraServices ? await opts.extraServices(url) : undefined;
    if (extras) services.push(...extras.services);

    let issuers: IssuerConfig | undefined = cfg.ca.githubActions ? githubActionsIssuerConfig() : undefined;
    if (extras?.issuers) issuers = issuers ? mergeIssuerConfigs(issuers, extras.issuers) : extras.issuers;
    if (cfg.ca.issuers) {
      const fromFile = loadIssuerConfigFile(cfg.ca.issuers, issuers ? [issuers] : undefined);
      issuers = issuers ? mergeIssuerConfigs(issuers, fromFile) : fromFile;
    }
    if (!issuers) throw new WaxsealError('ERR_CONFIG', 'no OIDC issuers: set ca.issuers or leave ca.github-actions on');

    const ca = await CaService.create({
      signer: caSigner,
      chain: caChain,
      issuers,
      audit: caAuditor(audit),
      ...(rules ? { authorize: caAuthorizer(rules) } : {}),
    });
    services.push(ca);
    const tsa = await TsaService.create({ signer: tsaSigner, chain: tsaChain, audit: tsaAuditor(audit), signingThread: true });
    services.push(tsa);

    // The optional transparency log, on the same listener (Rekor v1 + v2 APIs and tiles).
    const tlogs: TransparencyLogInstance[] = [];
    if (cfg.log) {
      const logSigner = await openSigner(cfg.log.key);
      signers.push(logSigner);
      const hostname = new URL(url).hostname;
      // One shard per log key: rotating the key starts a new tree, as Sigstore rotates shards;
      // entries of the old shard keep verifying with the retired key's trust-root entry.
      const shardDir = opts.log?.dataDir ?? join(cfg.data, 'log', toHex(sha256(logSigner.publicKeySpki)).slice(0, 16));
      mkdirSync(shardDir, { recursive: true });
      // One verify worker: signature checks over digests (~65 us each) leave the event loop.
      const log = await LogService.create({
        dataDir: shardDir,
        signer: auditedSigner(logSigner, audit, { actor: 'log', action: 'log.sign' }),
        hostname,
        verifyWorkers: 1,
        ...(cfg.log.treeId ? { treeId: cfg.log.treeId } : {}),
        ...(opts.log?.batchMaxDelayMs === undefined ? {} : { batchMaxDelayMs: opts.log.batchMaxDelayMs }),
      });
      services.push(log);
      const sinceFile = join(shardDir, 'key-valid-from');
      const since = readFileSync(sinceFile, { flag: 'a+', encoding: 'utf8' }).trim() || new Date(Date.now() - 60_000).toISOString();
      writeFileSync(sinceFile, `${since}\n`);
      for (const r of cfg.log.retired) tlogs.push(...retiredLogEntries(r, url, hostname));
      const ids = buildRekorLogs({
        origin: hostname,
        publicKey: logSigner.publicKeySpki,
        validFor: { start: new Date(since) },
        v1BaseUrl: url,
      });
      tlogs.push(ids.v1, ids.v2);
    }
    const root = buildTrustedRoot({
      certificateAuthorities: authorityEntries(url, caChain, cfg.ca.retired, 'CA'),
      timestampAuthorities: authorityEntries(tsaUrl, tsaChain, cfg.tsa.retired, 'TSA'),
      tlogs,
    });
    const sc = buildSigningConfig({
      operator: cfg.operator,
      validFrom: caChain[0]!.notBefore,
      caUrl: url,
      tsaUrl,
      ...(extras?.oidcUrl ? { oidcUrl: extras.oidcUrl } : {}),
      ...(cfg.log
        ? {
            rekor: [
              { url, majorApiVersion: 2 as const },
              { url, majorApiVersion: 1 as const },
            ],
          }
        : {}),
    });
    for (const s of services) s.mount(router);
    const { trustedRootPath, signingConfigPath, tuf } = await publishTrustDocuments({
      router,
      baseUrl: url,
      dataDir: cfg.data,
      trustedRoot: root,
      signingConfig: sc,
      ...(cfg.tuf ? { tufKeysDir: cfg.tuf.keys } : {}),
    });
    const tufUrl = tuf?.url;
    const tufRootPath = tuf?.initialRootPath;

    const running = server;
    return {
      url,
      trustedRoot: root,
      signingConfig: sc,
      trustedRootPath,
      signingConfigPath,
      tufUrl,
      tufRootPath,
      tsaUrl,
      logUrl: cfg.log ? url : undefined,
      auditDb: cfg.audit.db,
      async close() {
        await running.close();
        for (const s of services) await s.close();
        for (const c of closers) await c();
        for (const s of signers) await s.close?.();
      },
    };
  } catch (e) {
    await server?.close();
    for (const s of services) await s.close().catch(() => {});
    for (const c of closers) await Promise.resolve(c()).catch(() => {});
    for (const s of signers) await s.close?.().catch(() => {});
    throw e;
  }
}
