// waxseal audit list | verify | export: the instance's hash-chained audit log of key uses.
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { auditList, auditVerify, auditExport, auditVerifyExport } from '@waxseal/audit';
import { DEFAULT_DEV_DATA } from '@waxseal/instance';
import { join } from 'node:path';

export const auditSpec = {
  usage: 'waxseal audit <list|verify|export> [--db <file>] [options]',
  summary: 'Read and check the audit log: every key use and every refusal, hash-chained.',
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
  },
  positionals: [1, 1] as [number, number],
  help: `Subcommands:
  list     print records (--from <seq>, --limit <n>, --action ca.issue, --result denied)
  verify   walk the whole chain; exit 1 at the first edited, reordered, inserted or deleted record
           (--anchor <file> also detects records cut off the end; --file <export> checks an export)
  export   write every record as JSON lines (--out <file>, default stdout)

Options:
  --db <file>      the audit database (default: <data>/audit.db)
  --data <dir>     a dev instance's data folder (default ${DEFAULT_DEV_DATA})`,
} as const;

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
      const records = await auditList(db, {
        ...(from !== undefined ? { from } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(v.action ? { action: v.action } : {}),
        ...(v.result ? { result: v.result as 'ok' } : {}),
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
      ui.result(
        { ok: true, ...r },
        `audit log OK: ${r.records} records, head ${r.head ? `#${r.head.seq} ${r.head.hash}` : '(empty)'}${r.anchored ? ', matches the anchor' : ''}`,
      );
      return 0;
    }
    case 'export': {
      const r = await auditExport(db, v.out ?? process.stdout);
      if (v.out) ui.result({ ok: true, ...r, out: v.out }, `exported ${r.records} records to ${v.out}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand audit ${positionals[0]}`);
  }
}
