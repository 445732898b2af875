// waxseal log fsck | monitor: check a log's stored state, and follow a running log.
import { readFileSync } from 'node:fs';
import { WaxsealError } from '@waxseal/core';
import { findLogDirs, fsckLog, monitorLog, monitorExitCode, type FsckReport } from '@waxseal/rekor';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';

export const logSpec = {
  usage: 'waxseal log <fsck|monitor> [options]',
  summary: "Check a transparency log's storage, or monitor a running log.",
  options: {
    data: { type: 'string' },
    url: { type: 'string' },
    state: { type: 'string' },
    key: { type: 'string' },
    origin: { type: 'string' },
    'watch-identity': { type: 'string', multiple: true },
    'watch-digest': { type: 'string', multiple: true },
    once: { type: 'boolean' },
    interval: { type: 'string' },
  },
  positionals: [1, 1] as [number, number],
  help: `Subcommands:
  waxseal log fsck --data <dir>
      Recomputes the tree from the stored entries and checks every tile and every stored
      checkpoint. Exit 1 on any inconsistency. <dir> is a log's folder, or a folder holding
      logs: \`waxseal serve\` keeps one per log key in <data>/log/<key id> (all are checked);
      the dev instance keeps its log in <data>/log.
  waxseal log monitor --url <tiles base URL> [--state <file>] [--key <pem>] [--origin <name>]
                      [--watch-identity <regexp>]... [--watch-digest <sha256:hex>]... [--once]
      Follows the log's checkpoint, verifies its signature and its consistency with the last
      verified checkpoint (kept in --state), reports new entries matching watched identities or
      digests, and exits 1 on an inconsistency (a fork, a rollback, a bad signature).
      --interval <seconds> between polls (default 10).`,
} as const;

export async function log(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, logSpec);
  if (helpWanted) return (ui.result({ help: helpText(logSpec) }, helpText(logSpec)), 0);
  if (positionals[0] === 'fsck') {
    if (!v.data) throw new UsageError('--data <log data dir> is required');
    const dirs = findLogDirs(v.data);
    if (dirs.length === 0)
      throw new WaxsealError(
        'ERR_NOT_FOUND',
        `no log database in ${v.data} or the folders below it (waxseal serve keeps one log per key in <data>/log/<key id>)`,
      );
    const reports: FsckReport[] = [];
    for (const d of dirs) reports.push(await fsckLog(d));
    const lines = (r: FsckReport) => [
      `${r.ok ? 'OK' : 'INCONSISTENT'}: ${r.entries} entries, ${r.checkpointsChecked} checkpoints, ${r.tilesChecked} tiles, ${r.bundlesChecked} entry bundles checked (origin ${r.origin})`,
      ...r.errors.map((e) => `  error: ${e}`),
      ...r.warnings.map((w) => `  warning: ${w}`),
    ];
    const bad = reports.filter((r) => !r.ok);
    // One log: its report as before; several (one per log key): each under its folder.
    if (reports.length === 1) ui.result(reports[0], [...(dirs[0] === v.data ? [] : [`log in ${dirs[0]}:`]), ...lines(reports[0]!)]);
    else
      ui.result(
        { ok: bad.length === 0, logs: reports },
        reports.flatMap((r) => [`${r.dataDir}:`, ...lines(r).map((l) => `  ${l}`)]),
      );
    if (bad.length > 0)
      throw new WaxsealError(
        'ERR_LOG_INCONSISTENT',
        `fsck found ${bad.reduce((n, r) => n + r.errors.length, 0)} problem(s) in ${bad.map((r) => r.dataDir).join(', ')}`,
      );
    return 0;
  }
  if (positionals[0] === 'monitor') {
    if (!v.url) throw new UsageError('--url <log base URL> is required');
    const interval = v.interval === undefined ? 10 : Number(v.interval);
    if (!Number.isFinite(interval) || interval <= 0) throw new UsageError('--interval must be a positive number of seconds');
    let publicKey: string | undefined;
    if (v.key) {
      try {
        publicKey = readFileSync(v.key, 'utf8');
      } catch (e) {
        throw new WaxsealError('ERR_IO', `cannot read ${v.key}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
    }
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const r = await monitorLog({
      url: v.url,
      ...(publicKey ? { publicKey } : {}),
      ...(v.origin ? { origin: v.origin } : {}),
      ...(v.state ? { stateFile: v.state } : {}),
      watchIdentities: v['watch-identity'] ?? [],
      watchDigests: v['watch-digest'] ?? [],
      once: Boolean(v.once),
      intervalMs: interval * 1000,
      signal: ac.signal,
      onPass: (p) => {
        if (!ui.json) for (const m of p.matches) ui.info(`match at index ${m.index} (${m.kind} ${m.apiVersion}): ${m.reasons.join(', ')}`);
      },
    });
    ui.result(r, [
      `${r.ok ? 'consistent' : r.inconsistent ? 'INCONSISTENT' : 'failed'}: size ${r.size} (was ${r.previousSize}), ${r.allMatches.length} match(es) over ${r.passes} pass(es)${r.error ? `: ${r.error}` : ''}`,
    ]);
    const code = monitorExitCode(r);
    if (code === 1)
      throw new WaxsealError('ERR_LOG_INCONSISTENT', r.error ?? 'the log is inconsistent with a checkpoint it signed earlier');
    if (code !== 0) throw new WaxsealError('ERR_UNAVAILABLE', r.error ?? 'monitoring failed');
    return 0;
  }
  throw new UsageError(`unknown subcommand log ${positionals[0]}`);
}
