// The cost of the audit log on the hot paths: timestamps/s and certificates/s of an instance
// started the way `waxseal serve` starts it (configuration file, audit log on, its writer thread),
// next to the same TSA and CA without audit, with audit (the writer thread) on their own, and the
// bare node:http JSON server, all measured in alternating rounds in the same run. The figures
// count only if the audit logs then verify and hold a record for every answered request.
//
// This file is also its own servers: `audit.bench.ts --serve tsa|ca none|thread|inline ...` runs
// the standalone TSA or CA with that audit set-up, `--serve instance <config>` the instance.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK } from 'jose';
import {
  spawnServer,
  wrk,
  parseWrk,
  fmt,
  median,
  report,
  cpuSeconds,
  threadCpuSeconds,
  type LoadResult,
  type SpawnedServer,
} from './lib.ts';
import { AuditLog, MemoryAuditStore } from '../packages/audit/src/index.ts';
import { BATCH_INTERVAL_MS } from '../packages/audit/src/writer.ts';
import { chainToPem, generateDevTsaChain } from '../packages/tsa/src/chain.ts';
import { encodeTimeStampReq } from '../packages/tsa/src/timestamp.ts';
import { sha256 } from '../packages/core/src/crypto.ts';

const self = new URL(import.meta.url).pathname;
const here = new URL('.', import.meta.url).pathname;
// Durable answers wait for an fsync (a few ms here), so with N connections open the rate cannot pass
// N / fsync latency however the work is batched: the figure depends on N (AUDIT_BENCH_CONNECTIONS).
const CONNECTIONS = Number(process.env.AUDIT_BENCH_CONNECTIONS ?? 64);
const WARMUP_S = 1;
const MEASURE_S = Number(process.env.AUDIT_BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.AUDIT_BENCH_ROUNDS ?? 4);
const POOL = 256;
const ISSUER_JSON = (url: string) =>
  JSON.stringify({ OIDCIssuers: { [url]: { IssuerURL: url, Type: 'ci-provider', CIProvider: 'github-workflow' } } });

if (process.argv[2] === '--serve') await serve(process.argv.slice(3));
else await main();

// ---------- the servers ----------

async function serve(args: string[]): Promise<void> {
  const [what, ...rest] = args;
  let close: () => Promise<void>;
  if (what === 'instance') {
    const { loadInstanceConfig, startInstance } = await import('../apps/instance/src/index.ts');
    const inst = await startInstance(loadInstanceConfig(rest[0]!));
    process.stdout.write(`LISTENING ${inst.url}\n`);
    close = () => inst.close();
  } else {
    const [mode, dir] = rest as ['none' | 'thread' | 'inline' | 'memory' | 'wait', string];
    // memory: the same hooks and records, kept in memory (what the audit costs besides the disk).
    // wait: no audit, only its wait (groupCommitWait).
    const wait = mode === 'wait' ? groupCommitWait() : undefined;
    const audit =
      mode === 'none' || mode === 'wait'
        ? undefined
        : mode === 'memory'
          ? new AuditLog(new MemoryAuditStore())
          : AuditLog.open(join(dir, `${what}-${mode}.db`), { thread: mode === 'thread' });
    const { openSigner } = await import('../packages/keys/src/open.ts');
    const { caAuditor, tsaAuditor } = await import('../apps/instance/src/governance.ts');
    let server: { url: string; close(): Promise<void> };
    if (what === 'tsa') {
      const { startTsaServer } = await import('../packages/tsa/src/service.ts');
      const { parseCertificatesPem } = await import('../packages/core/src/x509.ts');
      server = await startTsaServer({
        signer: await openSigner(`file://${join(dir, 'tsa.key')}`),
        chain: parseCertificatesPem(readFileSync(join(dir, 'tsa-chain.pem'), 'utf8')),
        ...(audit ? { audit: tsaAuditor(audit) } : wait ? { audit: wait } : {}),
      });
    } else {
      const { startCaServer } = await import('../packages/ca/src/service.ts');
      const { loadCaChain } = await import('../packages/ca/src/chain.ts');
      const { githubActionsIssuerConfig, parseIssuerConfig } = await import('../packages/ca/src/issuers.ts');
      const signer = await openSigner(`file://${join(dir, 'ca.key')}`);
      server = await startCaServer({
        signer,
        chain: loadCaChain(signer, readFileSync(join(dir, 'ca-chain.pem'), 'utf8')).certificates,
        issuers: parseIssuerConfig(readFileSync(join(dir, 'issuers.json'), 'utf8'), { include: [githubActionsIssuerConfig()] }),
        ...(audit ? { audit: caAuditor(audit) } : wait ? { audit: wait } : {}),
      });
    }
    process.stdout.write(`LISTENING ${server.url}\n`);
    close = async () => {
      await server.close();
      await audit?.close();
    };
  }
  process.on('SIGTERM', () => void close().then(() => process.exit(0)));
}

/**
 * The wait a durable audit puts on each answer, without the audit: answers are released in
 * batches as the writer thread's group commit releases them (one batch in flight, sent no sooner
 * than BATCH_INTERVAL_MS after the previous one, durable AUDIT_BENCH_COMMIT_MS after it is sent,
 * default 0.7: a commit's time under load here), with no record, thread or disk. Next to the same
 * server without audit, it tells what the closed loop's extra latency costs by itself.
 */
function groupCommitWait(): () => Promise<void> {
  const commitMs = Number(process.env.AUDIT_BENCH_COMMIT_MS ?? 0.7);
  if (!(commitMs >= 0)) throw new Error(`AUDIT_BENCH_COMMIT_MS must be a number of ms >= 0, not ${process.env.AUDIT_BENCH_COMMIT_MS}`);
  let waiting: (() => void)[] = [];
  let inFlight = false;
  let timer: NodeJS.Timeout | undefined;
  let lastSend = -Infinity;
  const schedule = () => {
    if (inFlight || timer || waiting.length === 0) return;
    timer = setTimeout(send, Math.max(0, lastSend + BATCH_INTERVAL_MS - performance.now()));
  };
  const send = () => {
    timer = undefined;
    lastSend = performance.now();
    const batch = waiting;
    waiting = [];
    inFlight = true;
    setTimeout(() => {
      inFlight = false;
      for (const resolve of batch) resolve();
      schedule();
    }, commitMs);
  };
  return () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      schedule();
    });
}

// ---------- the benchmark ----------

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'wx-audit-bench-'));
  const servers: SpawnedServer[] = [];
  let failed = false;
  const measured = new Set<string>();
  // The OIDC issuer (discovery + static JWKS), served from this process.
  const { privateKey: idpKey, publicKey: idpPub } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = { keys: [{ ...(await exportJWK(idpPub)), kid: 'bench-1', alg: 'ES256', use: 'sig' }] };
  let issuerUrl = '';
  const idp = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/jwks`, id_token_signing_alg_values_supported: ['ES256'] })
        : req.url === '/jwks'
          ? JSON.stringify(jwks)
          : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(body ?? '{}');
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
  issuerUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  try {
    await material(work, issuerUrl);
    const poolDir = await requestPool(work, issuerUrl, idpKey);

    const bare = await spawnServer(join(here, 'servers/bare.ts'));
    servers.push(bare);
    const start = async (...args: string[]) => {
      const s = await spawnServer(self, ['--serve', ...args]);
      servers.push(s);
      return s;
    };
    const tsaNone = await start('tsa', 'none', work);
    const tsaThread = await start('tsa', 'thread', work);
    const caNone = await start('ca', 'none', work);
    const caThread = await start('ca', 'thread', work);
    const instance = await start('instance', join(work, 'waxseal.yaml'));
    // Optional (AUDIT_BENCH_INLINE=1): the writer on the event loop as before the writer thread,
    // the records kept in memory (the hooks' cost without any disk), and the wait alone.
    const inline = process.env.AUDIT_BENCH_INLINE === '1';
    const tsaInline = inline ? await start('tsa', 'inline', work) : undefined;
    const caInline = inline ? await start('ca', 'inline', work) : undefined;
    const caMemory = inline ? await start('ca', 'memory', work) : undefined;
    const tsaMemory = inline ? await start('tsa', 'memory', work) : undefined;
    const tsaWait = inline ? await start('tsa', 'wait', work) : undefined;
    const caWait = inline ? await start('ca', 'wait', work) : undefined;

    const tsq = encodeTimeStampReq({ hash: 'sha256', hashedMessage: sha256(randomBytes(64)), nonce: 7n, certReq: true });
    const bareBody = JSON.stringify({ artifactHash: randomBytes(32).toString('base64'), hashAlgorithm: 'sha256' });
    type Run = (s: number) => Promise<LoadResult>;
    const tsaRun =
      (s: SpawnedServer): Run =>
      async (sec) =>
        wrk({
          url: `${s.url}/api/v1/timestamp`,
          body: tsq,
          contentType: 'application/timestamp-query',
          connections: CONNECTIONS,
          seconds: sec,
        });
    const caRun =
      (s: SpawnedServer): Run =>
      (sec) =>
        wrkPool(`${s.url}/api/v2/signingCert`, poolDir, work, sec);
    const targets: [string, Run, SpawnedServer][] = [
      [
        'bare',
        async (sec) => wrk({ url: bare.url, body: bareBody, contentType: 'application/json', connections: CONNECTIONS, seconds: sec }),
        bare,
      ],
      ['tsa none', tsaRun(tsaNone), tsaNone],
      ['tsa thread', tsaRun(tsaThread), tsaThread],
      ['tsa instance', tsaRun(instance), instance],
      ...(tsaInline ? [['tsa inline', tsaRun(tsaInline), tsaInline] as [string, Run, SpawnedServer]] : []),
      ...(tsaMemory ? [['tsa memory', tsaRun(tsaMemory), tsaMemory] as [string, Run, SpawnedServer]] : []),
      ...(tsaWait ? [['tsa wait', tsaRun(tsaWait), tsaWait] as [string, Run, SpawnedServer]] : []),
      ['ca none', caRun(caNone), caNone],
      ['ca thread', caRun(caThread), caThread],
      ['ca instance', caRun(instance), instance],
      ...(caInline ? [['ca inline', caRun(caInline), caInline] as [string, Run, SpawnedServer]] : []),
      ...(caMemory ? [['ca memory', caRun(caMemory), caMemory] as [string, Run, SpawnedServer]] : []),
      ...(caWait ? [['ca wait', caRun(caWait), caWait] as [string, Run, SpawnedServer]] : []),
    ];
    // AUDIT_BENCH_ONLY=<regexp>: measure only the matching targets (their baselines are kept).
    const only = process.env.AUDIT_BENCH_ONLY ? new RegExp(process.env.AUDIT_BENCH_ONLY) : undefined;
    if (only)
      for (let i = targets.length - 1; i >= 0; i--)
        if (!only.test(targets[i]![0]) && !/none$|^bare$/.test(targets[i]![0])) targets.splice(i, 1);
    for (const [name] of targets) measured.add(name);
    for (const [, run] of targets) await run(WARMUP_S);
    // Besides the rate (which a busy machine makes noisy), the server's CPU per answered request
    // (all its threads, from /proc): the difference with and without audit is what a record costs.
    // By thread too (main thread, libuv's pool, V8's helpers, the audit writer): where a record's cost lands.
    type ThreadUs = Map<string, { us: number; kernelUs: number }>;
    const results = new Map<string, (LoadResult & { cpuUs: number; threadUs: ThreadUs })[]>(targets.map(([n]) => [n, []]));
    for (let i = 0; i < ROUNDS; i++)
      for (const [name, run, server] of targets) {
        const pid = server.child.pid!;
        const cpu0 = cpuSeconds(pid);
        const threads0 = threadCpuSeconds(pid);
        const r = await run(MEASURE_S);
        const requests = r.requestsPerSec * MEASURE_S;
        const cpuUs = ((cpuSeconds(pid) - cpu0) * 1e6) / requests;
        const perRequest = (sec: number) => (sec * 1e6) / requests;
        const threadUs: ThreadUs = new Map(
          [...threadCpuSeconds(pid)].map(([t, now]) => {
            const before = threads0.get(t) ?? { seconds: 0, kernelSeconds: 0 };
            return [t, { us: perRequest(now.seconds - before.seconds), kernelUs: perRequest(now.kernelSeconds - before.kernelSeconds) }];
          }),
        );
        results.get(name)!.push({ ...r, cpuUs, threadUs });
      }

    const rps = (n: string) => median(results.get(n)!.map((r) => r.requestsPerSec));
    const rounds = (n: string) =>
      results
        .get(n)!
        .map((r) => fmt(r.requestsPerSec))
        .join(' / ');
    const perRound = (n: string, base: string) =>
      results
        .get(n)!
        .map((r, i) => `${fmt((100 * r.requestsPerSec) / results.get(base)![i]!.requestsPerSec, 1)}%`)
        .join(' / ');
    const bareRps = rps('bare');
    report(`bare node:http JSON (c=${CONNECTIONS})`, bareRps, 'req/s');
    const cpu = (n: string) => median(results.get(n)!.map((r) => r.cpuUs));
    const byThread = (n: string) => {
      const rs = results.get(n)!;
      const names = [...new Set(rs.flatMap((r) => [...r.threadUs.keys()]))];
      return names
        .map(
          (t) => [t, median(rs.map((r) => r.threadUs.get(t)?.us ?? 0)), median(rs.map((r) => r.threadUs.get(t)?.kernelUs ?? 0))] as const,
        )
        .filter(([, total]) => total >= 0.5)
        .sort((a, b) => b[1] - a[1])
        .map(([t, total, kernel]) => `${t} ${fmt(total, 1)} (kernel ${fmt(kernel, 1)})`)
        .join(', ');
    };
    const row = (label: string, name: string, unit: string, without: string) => {
      if (!results.has(name)) return;
      report(label, rps(name), unit, { name: 'bare', value: bareRps });
      const delta = cpu(name) - cpu(without);
      const extra = name === without ? '' : ` (${delta < 0 ? '-' : '+'}${fmt(Math.abs(delta), 1)})`;
      process.stdout.write(
        `${''.padEnd(34)} rounds ${rounds(name)}   vs without audit per round ${name === without ? '-' : perRound(name, without)}` +
          `   server CPU ${fmt(cpu(name), 1)} us/request${extra}\n` +
          `${''.padEnd(34)} by thread (us/request, median; of which in the kernel): ${byThread(name)}\n`,
      );
    };
    row('TSA P-256 alone, no audit', 'tsa none', 'timestamps/s', 'tsa none');
    row('TSA alone, audit (writer thread)', 'tsa thread', 'timestamps/s', 'tsa none');
    if (inline) row('TSA alone, audit on event loop', 'tsa inline', 'timestamps/s', 'tsa none');
    if (inline) row('TSA alone, audit kept in memory', 'tsa memory', 'timestamps/s', 'tsa none');
    if (inline) row("TSA alone, only the audit's wait", 'tsa wait', 'timestamps/s', 'tsa none');
    row('instance TSA, audit on', 'tsa instance', 'timestamps/s', 'tsa none');
    row('CA P-256 alone, no audit', 'ca none', 'certs/s', 'ca none');
    row('CA alone, audit (writer thread)', 'ca thread', 'certs/s', 'ca none');
    if (inline) row('CA alone, audit on event loop', 'ca inline', 'certs/s', 'ca none');
    if (inline) row('CA alone, audit kept in memory', 'ca memory', 'certs/s', 'ca none');
    if (inline) row("CA alone, only the audit's wait", 'ca wait', 'certs/s', 'ca none');
    row('instance CA, audit on', 'ca instance', 'certs/s', 'ca none');
    // Judged on the rounds' paired ratios (each round runs both back to back), not on the ratio of
    // the medians: the machine's speed drifts between rounds far more than within one.
    const pairedRatio = (name: string, without: string) =>
      median(results.get(name)!.map((r, i) => r.requestsPerSec / results.get(without)![i]!.requestsPerSec));
    const target = (name: string, without: string) => {
      if (!results.has(name)) return `${name} not measured`;
      const ratio = pairedRatio(name, without);
      return `${name} ${fmt(100 * ratio, 1)}% ${ratio >= 0.8 ? 'met' : 'NOT met'}`;
    };
    process.stdout.write(
      `target: with audit >= 80% of without (median of the rounds' ratios): ${target('tsa thread', 'tsa none')}; ${target('tsa instance', 'tsa none')}; ` +
        `${target('ca thread', 'ca none')}; ${target('ca instance', 'ca none')}\n`,
    );
    const non2xx = [...results.values()].flat().reduce((a, r) => a + r.non2xx, 0);
    if (non2xx > 0) {
      process.stdout.write(`FAILED: ${non2xx} non-2xx answers under load\n`);
      failed = true;
    }
  } catch (e) {
    failed = true;
    process.stderr.write(`audit bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  } finally {
    for (const s of servers) await s.stop();
    idp.close();
    idp.closeAllConnections();
  }
  if (!failed) failed = !(await auditsHold(work, measured));
  rmSync(work, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

/** Every audit database verifies, anchor included, and holds records of both kinds. */
async function auditsHold(work: string, measured: ReadonlySet<string>): Promise<boolean> {
  const { auditVerify, auditList } = await import('../packages/audit/src/index.ts');
  const dbs = [
    ...(measured.has('tsa thread') ? [join(work, 'tsa-thread.db')] : []),
    ...(measured.has('ca thread') ? [join(work, 'ca-thread.db')] : []),
    ...(measured.has('tsa instance') || measured.has('ca instance') ? [join(work, 'data', 'audit.db')] : []),
  ];
  const lines: string[] = [];
  for (const db of dbs) {
    const v = await auditVerify(db);
    const last = (await auditList(db, { from: Math.max(1, v.records - 5) })).map((r) => r.action);
    if (!v.anchored || v.records === 0) return false;
    lines.push(
      `${db.slice(work.length + 1)}: ${fmt(v.records)} records, chain and anchor verified (last: ${[...new Set(last)].join(', ')})`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return true;
}

// ---------- key material, configuration and the CA request pool ----------

async function material(work: string, issuerUrl: string): Promise<void> {
  const { generateSigner } = await import('../packages/keys/src/memory.ts');
  const { initCaChain } = await import('../packages/ca/src/chain.ts');
  const tsa = await generateDevTsaChain({ kind: 'ecdsa-p256' });
  writeFileSync(join(work, 'tsa.key'), tsa.signer.exportPkcs8Pem(), { mode: 0o600 });
  writeFileSync(join(work, 'tsa-chain.pem'), chainToPem(tsa.chain));
  const caSigner = generateSigner('ecdsa-p256');
  const ca = await initCaChain({ intermediateSigner: caSigner, organization: 'waxseal bench' });
  writeFileSync(join(work, 'ca.key'), caSigner.exportPkcs8Pem(), { mode: 0o600 });
  writeFileSync(join(work, 'ca-chain.pem'), ca.chainPem);
  writeFileSync(join(work, 'issuers.json'), ISSUER_JSON(issuerUrl));
  mkdirSync(join(work, 'data'));
  // As docs/configuration.md tells a user to write it (log and TUF off: not what is measured).
  writeFileSync(
    join(work, 'waxseal.yaml'),
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      'data: ./data',
      'operator: bench.example',
      'ca:',
      '  key: file://ca.key',
      '  chain: ca-chain.pem',
      '  issuers: issuers.json',
      'tsa:',
      '  key: file://tsa.key',
      '  chain: tsa-chain.pem',
      'audit:',
      '  db: ./data/audit.db',
      '',
    ].join('\n'),
  );
}

async function requestPool(work: string, issuerUrl: string, idpKey: KeyObject): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const subject = 'repo:octo-org/octo-repo:ref:refs/heads/main';
  const token = await new SignJWT({
    iss: issuerUrl,
    aud: 'sigstore',
    sub: subject,
    iat: now,
    nbf: now,
    exp: now + 3600,
    ref: 'refs/heads/main',
    sha: randomBytes(20).toString('hex'),
    repository: 'octo-org/octo-repo',
    repository_owner: 'octo-org',
    repository_owner_id: '65',
    repository_id: '74',
    repository_visibility: 'private',
    run_id: '2002',
    run_attempt: '1',
    runner_environment: 'github-hosted',
    workflow: 'release',
    event_name: 'push',
    job_workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
    job_workflow_sha: randomBytes(20).toString('hex'),
    workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
    workflow_sha: randomBytes(20).toString('hex'),
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'JWT' })
    .sign(idpKey);
  const dir = join(work, 'pool');
  mkdirSync(dir);
  for (let i = 0; i < POOL; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const body = JSON.stringify({
      credentials: { oidcIdentityToken: token },
      publicKeyRequest: {
        publicKey: { algorithm: 'ECDSA', content: publicKey.export({ format: 'pem', type: 'spki' }) as string },
        proofOfPossession: nodeSign('sha256', Buffer.from(subject), privateKey).toString('base64'),
      },
    });
    writeFileSync(join(dir, `${i}.json`), body);
  }
  return dir;
}

/** wrk cycling through the request pool, asynchronously so this process keeps serving the JWKS. */
function wrkPool(url: string, poolDir: string, work: string, seconds: number): Promise<LoadResult> {
  const u = new URL(url);
  const script = join(work, 'pool.lua');
  writeFileSync(
    script,
    [
      'local bodies = {}',
      `for i = 0, ${POOL - 1} do local f = io.open("${poolDir}/" .. i .. ".json", "rb"); bodies[i + 1] = f:read("*a"); f:close() end`,
      'local idx = 0',
      'local headers = { ["Content-Type"] = "application/json" }',
      `request = function() idx = idx % ${POOL} + 1; return wrk.format("POST", "${u.pathname}", headers, bodies[idx]) end`,
      'done = function(summary, latency, requests) io.write(string.format("ERRORS %d %d %d %d %d\\n", summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout)) end',
    ].join('\n'),
  );
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t', '1', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--latency', '-s', script, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(parseWrk(out)));
  });
}
