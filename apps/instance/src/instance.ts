// The instance: CA, TSA, (log), TUF and the trust documents on one listener, every key opened by
// URI (file, PKCS#11, AWS KMS, GCP KMS), every chain checked at start. Retired chains and keys stay
// in trusted_root.json with an end to their validity, so signatures made before a rotation keep
// verifying. This is the only composition root: `waxseal serve` starts it from a configuration
// file, the dev instance from its profile (dev/profile.ts), which adds its identity providers.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { WaxsealError, isWaxsealError, parseCertificatesPem, toHex, sha256, type Certificate } from '@waxseal/core';
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
  /** The log's base URL when the instance runs it: the instance URL, under log.hostname. */
  logUrl: string | undefined;
  /** The log's data folder (what `waxseal log fsck --data` takes), when it runs. */
  logDataDir: string | undefined;
  /** The log's Rekor v1 tree ID, recorded with its data on first start. */
  logTreeId: string | undefined;
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

/** The first line of what went wrong (node's file errors say code, what and path: "ENOENT: ..., open '/x'"). */
function why(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/**
 * Runs what a setting drives; any failure becomes one line naming the setting (a WaxsealError
 * keeps its code; anything else, a file error for instance, is ERR_CONFIG), never an internal error.
 */
async function forSetting<T>(setting: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    // Already named ("ca.key: ...", "log.tree-id 12 ..."): as it is.
    if (isWaxsealError(e) && [':', '.', ' ', '['].some((c) => e.message.startsWith(`${setting}${c}`))) throw e;
    throw new WaxsealError(isWaxsealError(e) ? e.code : 'ERR_CONFIG', `${setting}: ${why(e)}`, { cause: e });
  }
}

/** The folder a file setting's file goes in must exist (a missing one is a typo, not something to create). */
function checkParentFolder(path: string, setting: string): void {
  const dir = dirname(path);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new WaxsealError('ERR_CONFIG', `${setting}: folder ${dir} does not exist (create it, or change ${setting})`);
}

function readChain(path: string, setting: string): Certificate[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `${setting}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? why(e)}`);
  }
  const chain = parseCertificatesPem(text);
  if (chain.length === 0) throw new WaxsealError('ERR_CONFIG', `${setting}: ${path} holds no certificates`);
  return chain;
}

/** Trust-root entries for the current chain and every retired one (which ends at its `end`). */
function authorityEntries(uri: string, current: Certificate[], retired: RetiredChain[], setting: string): CertificateAuthority[] {
  const entries = retired.map((r, i) =>
    buildCertificateAuthority({ uri, chain: readChain(r.chain, `${setting}[${i}].chain`), validFor: { end: new Date(r.end) } }),
  );
  // The current chain is trusted from its certificate's start; windows may overlap (clients
  // accept overlapping windows), so signatures made during a rotation verify either way.
  entries.push(buildCertificateAuthority({ uri, chain: current }));
  return entries;
}

/** Trust-root entries (v1 and v2 views) for a retired log key, valid until its end. */
async function retiredLogEntries(r: RetiredKey, i: number, baseUrl: string, hostname: string): Promise<TransparencyLogInstance[]> {
  return forSetting(`log.retired[${i}].public-key`, () => {
    const { v1, v2 } = buildRekorLogs({
      origin: hostname,
      publicKey: readFileSync(r.publicKey, 'utf8'),
      validFor: { start: new Date(r.start), end: new Date(r.end) },
      v1BaseUrl: baseUrl,
    });
    return [v1, v2];
  });
}

/**
 * Since when the log key is trusted (trusted_root.json): `key-valid-from` in the log's folder,
 * written once and never rewritten, since every earlier bundle is checked against it. Without
 * one (a new log, or a file a crash left empty) it is a minute before the log's creation.
 */
function keyValidFrom(logDir: string, createdAt: string): string {
  const file = join(logDir, 'key-valid-from');
  let text = '';
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new WaxsealError('ERR_CONFIG', `cannot read ${file}: ${why(e)}`);
  }
  if (text) {
    if (Number.isNaN(Date.parse(text)))
      throw new WaxsealError('ERR_CONFIG', `${file} holds no RFC 3339 time (${JSON.stringify(text.slice(0, 40))})`);
    return text;
  }
  const created = Date.parse(createdAt);
  const since = new Date((Number.isNaN(created) ? Date.now() : created) - 60_000).toISOString();
  // A new file under a temporary name, synced, then renamed: a crash leaves the old state or the new.
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, `${since}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return since;
}

/** The instance URL with the log's host name (the checkpoint origin) in place of its own. */
function logUrlFor(url: string, hostname: string): string {
  const u = new URL(url);
  if (u.hostname === hostname) return url;
  u.hostname = hostname;
  if (u.hostname !== hostname)
    throw new WaxsealError('ERR_CONFIG', `log.hostname ${JSON.stringify(hostname)} must be a host name as URLs write it (lower case)`);
  return u.href.replace(/\/$/, '');
}

/** Names the setting behind a log that refuses its storage (another origin, key or tree ID). */
function logIdentityError(e: unknown, treeIdSet: boolean): unknown {
  if (!isWaxsealError(e, 'ERR_CONFIG')) return e;
  const identity = e.detail?.identity;
  const recorded = JSON.stringify(e.detail?.recorded);
  if (identity === 'origin')
    return new WaxsealError(
      'ERR_CONFIG',
      `log.hostname: ${e.message}; the checkpoint origin is part of the log's identity: set log.hostname to ${recorded}`,
      { cause: e },
    );
  if (identity === 'treeId' && treeIdSet)
    return new WaxsealError('ERR_CONFIG', `log.tree-id: ${e.message}; set it to ${recorded} or remove the setting`, { cause: e });
  return new WaxsealError(e.code, `log: ${e.message}`, { cause: e });
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
  await forSetting('data', () => mkdirSync(cfg.data, { recursive: true }));
  checkParentFolder(cfg.audit.db, 'audit.db');
  if (cfg.audit.anchor) checkParentFolder(cfg.audit.anchor, 'audit.anchor');
  const signers: Signer[] = [];
  const services: Service[] = [];
  const closers: (() => Promise<unknown> | unknown)[] = [];
  let server: RunningServer | undefined;
  try {
    const caSigner = await forSetting('ca.key', () => openSigner(cfg.ca.key));
    signers.push(caSigner);
    const tsaSigner = await forSetting('tsa.key', () => openSigner(cfg.tsa.key));
    signers.push(tsaSigner);
    const caChain = readChain(cfg.ca.chain, 'ca.chain');
    const tsaChain = readChain(cfg.tsa.chain, 'tsa.chain');

    const audit = await forSetting('audit', () => AuditLog.open(cfg.audit.db, cfg.audit.anchor ? { anchorPath: cfg.audit.anchor } : {}));
    closers.push(() => audit.close());
    const rulesFile = cfg.ca.signingRules;
    const rules = rulesFile ? await forSetting('ca.signing-rules', () => parseSigningRules(readFileSync(rulesFile, 'utf8'))) : undefined;

    const router = new Router();
    const routed = requestListener({ router, maxBodyBytes: 10 << 20 });
    // The TSA's hot path bypasses the router once the TSA exists (its listener answers POST
    // /api/v1/timestamp without URL objects or promises, as the standalone TSA does).
    let listener = routed;
    try {
      server = await listen((req, res) => listener(req, res), cfg.listen.port, cfg.listen.host);
    } catch (e) {
      throw listenError(e, cfg.listen.host, cfg.listen.port);
    }
    const url = cfg.url ?? server.url;
    const tsaUrl = `${url}/api/v1/timestamp`;
    const extras = opts.extraServices ? await opts.extraServices(url) : undefined;
    if (extras) services.push(...extras.services);

    let issuers: IssuerConfig | undefined = cfg.ca.githubActions ? githubActionsIssuerConfig() : undefined;
    if (extras?.issuers) issuers = issuers ? mergeIssuerConfigs(issuers, extras.issuers) : extras.issuers;
    const issuersFile = cfg.ca.issuers;
    if (issuersFile) {
      const base = issuers;
      issuers = await forSetting('ca.issuers', () => {
        const fromFile = loadIssuerConfigFile(issuersFile, base ? [base] : undefined);
        return base ? mergeIssuerConfigs(base, fromFile) : fromFile;
      });
    }
    if (!issuers) throw new WaxsealError('ERR_CONFIG', 'no OIDC issuers: set ca.issuers or leave ca.github-actions on');

    const ca = await forSetting('ca', () =>
      CaService.create({
        signer: caSigner,
        chain: caChain,
        issuers,
        audit: caAuditor(audit),
        ...(rules ? { authorize: caAuthorizer(rules) } : {}),
      }),
    );
    services.push(ca);
    const tsa = await forSetting('tsa', () =>
      TsaService.create({ signer: tsaSigner, chain: tsaChain, audit: tsaAuditor(audit), signingThread: true }),
    );
    services.push(tsa);
    listener = tsa.listener(routed);

    // The optional transparency log, on the same listener (Rekor v1 + v2 APIs and tiles).
    const tlogs: TransparencyLogInstance[] = [];
    let logDataDir: string | undefined;
    let logUrl: string | undefined;
    let logTreeId: string | undefined;
    if (cfg.log) {
      const logCfg = cfg.log;
      const logSigner = await forSetting('log.key', () => openSigner(logCfg.key));
      signers.push(logSigner);
      // The checkpoint origin: part of the log's identity, so it never follows a changed URL alone.
      // Rekor v2 clients require it to be the host of the log's URL: with a host name of its own,
      // the log is announced at the instance URL under that name (DNS or a proxy brings it here).
      const hostname = logCfg.hostname;
      logUrl = logUrlFor(url, hostname);
      // One shard per log key: rotating the key starts a new tree, as Sigstore rotates shards;
      // entries of the old shard keep verifying with the retired key's trust-root entry.
      const shardDir = opts.log?.dataDir ?? join(cfg.data, 'log', toHex(sha256(logSigner.publicKeySpki)).slice(0, 16));
      await forSetting('data', () => mkdirSync(shardDir, { recursive: true }));
      // One verify worker: signature checks over digests (~65 us each) leave the event loop.
      // A new log records a random tree ID with its data; every later start reads it back.
      let log: LogService;
      try {
        log = await LogService.create({
          dataDir: shardDir,
          signer: auditedSigner(logSigner, audit, { actor: 'log', action: 'log.sign' }),
          hostname,
          verifyWorkers: 1,
          ...(logCfg.treeId ? { treeId: logCfg.treeId } : {}),
          ...(opts.log?.batchMaxDelayMs === undefined ? {} : { batchMaxDelayMs: opts.log.batchMaxDelayMs }),
        });
      } catch (e) {
        throw logIdentityError(e, logCfg.treeId !== undefined);
      }
      services.push(log);
      logDataDir = shardDir;
      logTreeId = log.treeId;
      const since = keyValidFrom(shardDir, log.log.identity.createdAt);
      for (const [i, r] of logCfg.retired.entries()) tlogs.push(...(await retiredLogEntries(r, i, logUrl, hostname)));
      const ids = buildRekorLogs({
        origin: hostname,
        publicKey: logSigner.publicKeySpki,
        validFor: { start: new Date(since) },
        v1BaseUrl: logUrl,
      });
      tlogs.push(ids.v1, ids.v2);
    }
    const root = buildTrustedRoot({
      certificateAuthorities: authorityEntries(url, caChain, cfg.ca.retired, 'ca.retired'),
      timestampAuthorities: authorityEntries(tsaUrl, tsaChain, cfg.tsa.retired, 'tsa.retired'),
      tlogs,
    });
    const sc = buildSigningConfig({
      operator: cfg.operator,
      validFrom: caChain[0]!.notBefore,
      caUrl: url,
      tsaUrl,
      ...(extras?.oidcUrl ? { oidcUrl: extras.oidcUrl } : {}),
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
    const { trustedRootPath, signingConfigPath, tuf } = await forSetting(cfg.tuf ? 'tuf.keys' : 'data', () =>
      publishTrustDocuments({
        router,
        baseUrl: url,
        dataDir: cfg.data,
        trustedRoot: root,
        signingConfig: sc,
        ...(cfg.tuf ? { tufKeysDir: cfg.tuf.keys } : {}),
      }),
    );
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
      logUrl,
      logDataDir,
      logTreeId,
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
