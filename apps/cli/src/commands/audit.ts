// waxseal audit list | verify | export | prune: the instance's hash-chained audit log of key uses.
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { AUDIT_RESULTS, auditList, auditVerify, auditExport, auditPrune, auditVerifyExport, type AuditResult } from '@waxseal/audit';
import { DEFAULT_DEV_DATA } from '@waxseal/instance';
import { join } from 'node:path';

export const auditSpec = {
  usage: 'waxseal audit <list|verify|export|prune> [--db <file>] [options]',
  summary: 'Read, check, archive and prune the audit log: every key use and every refusal, hash-chained.',
  options: {
    db: { type: 'string' },
    data: { type: 'string' },
    anchor: { type: 'string' },
    from: { type: 'string' },
    limit: { type: 'string' },
    action: { type: 'string' },
    result: { type: 'string' },
    out: { type: 'string' },
    file: { type: 'string' },
    before: { type: 'string' },
    archive: { type: 'string' },
    discard: { type: 'boolean' },
  },
  positionals: [1, 1] as [number, number],
  help: `Subcommands:
  waxseal audit list [--from <seq>] [--limit <n>] [--action <action>] [--result ok|denied|error]
      Prints records (default the first 100). Refusals (policy, token, bad request) are
      "denied", failures of Waxseal itself (signer, internal) are "error":
      waxseal audit list --result denied
  waxseal audit verify [--anchor <file>] [--file <export>]
      Walks the whole chain; exit 1 at the first edited, reordered, inserted or deleted record.
      The anchor (default <db>.anchor.json) also catches records cut off the end, and after a
      prune, records cut off the start. --file checks an export or archive instead.
  waxseal audit export [--before <time>] [--out <file>]
      Writes the records as JSON lines (default stdout). --before <time> writes only the
      records older than <time> (ISO 8601, e.g. 2026-01-01 or 2026-01-01T00:00:00Z): the
      archive that prune then removes. An archive verifies on its own (audit verify --file).
  waxseal audit prune --before <time> --archive <file> | --discard
      Removes the records older than <time> that the archive holds, after verifying the whole
      log and checking the archive against it, and appends an audit.prune record naming the
      last record removed: audit verify keeps passing from there. --discard removes them
      without an archive.

Options:
  --db <file>      the audit database (default: <data>/audit.db)
  --data <dir>     a dev instance's data folder (default ${DEFAULT_DEV_DATA})`,
} as const;

function time(s: string | undefined, flag: string): Date {
  if (s === undefined) throw new UsageError(`${flag} <time> is required`);
  const t = new Date(s);
  if (Number.isNaN(t.getTime()))
    throw new UsageError(`${flag} must be a time such as 2026-01-01 or 2026-01-01T00:00:00Z, got ${JSON.stringify(s)}`);
  return t;
}

export async function audit(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, auditSpec);
  if (helpWanted) return (ui.result({ help: helpText(auditSpec) }, helpText(auditSpec)), 0);
  const db = v.db ?? join(v.data ?? DEFAULT_DEV_DATA, 'audit.db');
  const anchor = v.anchor ? { anchorPath: v.anchor } : {};
  switch (positionals[0]) {
    case 'list': {
      const num = (s: string | undefined, flag: string) => {
        if (s === undefined) return undefined;
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer`);
        return n;
      };
      const from = num(v.from, '--from');
      const limit = num(v.limit, '--limit');
      if (v.result !== undefined && !AUDIT_RESULTS.includes(v.result as AuditResult))
        throw new UsageError(`--result must be one of ${AUDIT_RESULTS.join(', ')}`);
      const records = await auditList(db, {
        ...(from !== undefined ? { from } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(v.action ? { action: v.action } : {}),
        ...(v.result ? { result: v.result as AuditResult } : {}),
      });
      ui.result(
        records,
        records.map(
          (r) =>
            `${r.seq}\t${r.time}\t${r.action}\t${r.result}${r.errorCode ? ` ${r.errorCode}` : ''}\t${r.identity?.san ?? r.identity?.subject ?? '-'}\t${r.actor}`,
        ),
      );
      return 0;
    }
    case 'verify': {
      const r = v.file ? await auditVerifyExport(v.file, anchor) : await auditVerify(db, anchor);
      const from = r.base ? `, starting after seq ${r.base.seq} (${r.base.hash})` : '';
      ui.result(
        { ok: true, ...r },
        `audit log OK: ${r.records} records${from}, head ${r.head ? `#${r.head.seq} ${r.head.hash}` : '(empty)'}${r.anchored ? ', matches the anchor' : ''}`,
      );
      return 0;
    }
    case 'export': {
      const before = v.before === undefined ? undefined : time(v.before, '--before');
      const r = await auditExport(db, v.out ?? process.stdout, before ? { before } : {});
      if (v.out)
        ui.result(
          { ok: true, ...r, out: v.out },
          `exported ${r.records} records to ${v.out}${r.head ? ` (through seq ${r.head.seq})` : ''}`,
        );
      return 0;
    }
    case 'prune': {
      const before = time(v.before, '--before');
      if (!v.archive && !v.discard) throw new UsageError('prune needs --archive <file> (from audit export --before) or --discard');
      if (v.archive && v.discard) throw new UsageError('give --archive or --discard, not both');
      const r = await auditPrune(db, { before, ...anchor, ...(v.archive ? { archivePath: v.archive } : { discard: true }) });
      ui.result(
        { ok: true, ...r },
        r.through
          ? `pruned ${r.pruned} records (through seq ${r.through.seq}); audit.prune recorded as seq ${r.record!.seq}`
          : `nothing to prune: no record is older than ${before.toISOString()}`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand audit ${positionals[0]}`);
  }
}
