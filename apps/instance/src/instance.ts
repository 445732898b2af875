// A production instance: CA, TSA, (log), TUF and the trust documents on one listener, every key
// opened by URI (file, PKCS#11, AWS KMS, GCP KMS), every chain checked at start. Retired chains and
// keys stay in trusted_root.json with an end to their validity, so signatures made before a
// rotation keep verifying.
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
  close(): Promise<void>;
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

export async function startInstance(cfg: InstanceConfig): Promise<RunningInstance> {
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

    let issuers: IssuerConfig | undefined = cfg.ca.githubActions ? githubActionsIssuerConfig() : undefined;
    if (cfg.ca.issuers) {
      const fromFile = loadIssuerConfigFile(cfg.ca.issuers, issuers ? [issuers] : undefined);
      issuers = issuers ? mergeIssuerConfigs(issuers, fromFile) : fromFile;
    }
    if (!issuers) throw new WaxsealError('ERR_CONFIG', 'no OIDC issuers: set ca.issuers or leave ca.github-actions on');

    const audit = await AuditLog.open(cfg.audit.db, cfg.audit.anchor ? { anchorPath: cfg.audit.anchor } : {});
    closers.push(() => audit.close());
    const rules = cfg.ca.signingRules ? parseSigningRules(readFileSync(cfg.ca.signingRules, 'utf8')) : undefined;

    const ca = await CaService.create({
      signer: caSigner,
      chain: caChain,
      issuers,
      audit: caAuditor(audit),
      ...(rules ? { authorize: caAuthorizer(rules) } : {}),
    });
    const tsa = await TsaService.create({ signer: tsaSigner, chain: tsaChain, audit: tsaAuditor(audit), signingThread: true });
    services.push(ca, tsa);

    const router = new Router();
    server = await listen(requestListener({ router, maxBodyBytes: 10 << 20 }), cfg.listen.port, cfg.listen.host);
    const url = cfg.url ?? server.url;
    const tsaUrl = `${url}/api/v1/timestamp`;

    // The optional transparency log, on the same listener (Rekor v1 + v2 APIs and tiles).
    const tlogs: TransparencyLogInstance[] = [];
    if (cfg.log) {
      const logSigner = await openSigner(cfg.log.key);
      signers.push(logSigner);
      const hostname = new URL(url).hostname;
      // One shard per log key: rotating the key starts a new tree, as Sigstore rotates shards;
      // entries of the old shard keep verifying with the retired key's trust-root entry.
      const shardDir = join(cfg.data, 'log', toHex(sha256(logSigner.publicKeySpki)).slice(0, 16));
      mkdirSync(shardDir, { recursive: true });
      // One verify worker: signature checks over digests (~65 us each) leave the event loop.
      const log = await LogService.create({
        dataDir: shardDir,
        signer: auditedSigner(logSigner, audit, { actor: 'log', action: 'log.sign' }),
        hostname,
        verifyWorkers: 1,
        ...(cfg.log.treeId ? { treeId: cfg.log.treeId } : {}),
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
