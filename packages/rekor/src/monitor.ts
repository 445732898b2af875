// `waxseal log monitor`: the generic tlog monitor (src/tlog/monitor.ts) with the Rekor entry
// describer, so watched identities (certificate SANs, PGP e-mails) and artifact digests are
// recognised in every entry type this log writes.
import { runMonitor, type MonitorOptions, type MonitorResult } from '@waxseal/tlog';
import { describeEntry } from './entries/describe.ts';

export type { MonitorOptions, MonitorResult, MonitorMatch, MonitorPass, MonitorState } from '@waxseal/tlog';

export function monitorLog(opts: MonitorOptions): Promise<MonitorResult> {
  return runMonitor({ describe: describeEntry, ...opts });
}

/** Exit status for the CLI: 0 ok, 1 inconsistency (fork/rollback/bad signature), 2 other failure. */
export function monitorExitCode(r: MonitorResult): number {
  return r.ok ? 0 : r.inconsistent ? 1 : 2;
}
