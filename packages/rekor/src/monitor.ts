// `waxseal log monitor`: the generic tlog monitor (@waxseal/tlog runMonitor) with the Rekor entry
// describer, so watched identities (certificate SANs, PGP e-mails) and artifact digests are
// recognised in every entry type this log writes, and the key fetched from the v1 API on first use.
import { runMonitor, type MonitorOptions, type MonitorResult } from '@waxseal/tlog';
import { describeEntry } from './entries/describe.ts';

export type { MonitorOptions, MonitorResult, MonitorMatch, MonitorPass, MonitorState } from '@waxseal/tlog';

export function monitorLog(opts: MonitorOptions): Promise<MonitorResult> {
  // Trust on first use fetches the key where Rekor v1 serves it.
  const keyUrl = `${opts.url.replace(/\/+$/, '')}/api/v1/log/publicKey`;
  return runMonitor({ describe: describeEntry, ...opts, keyUrl: opts.keyUrl ?? keyUrl });
}

/** Exit status for the CLI: 0 ok, 1 inconsistency (fork/rollback/bad signature), 2 other failure. */
export function monitorExitCode(r: MonitorResult): number {
  return r.ok ? 0 : r.inconsistent ? 1 : 2;
}
