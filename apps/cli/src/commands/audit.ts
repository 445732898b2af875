// waxseal audit list | verify | export | prune: the instance's hash-chained audit log of key uses.
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import {
  AUDIT_RESULTS,
  anchorKeyOf,
  anchorKeysFromTrustedRoot,
  auditList,
  auditVerify,
  auditExport,
  auditPrune,
  auditVerifyExport,
  type AnchorKey,
  type AuditResult,
} from '@waxseal/audit';
import { DEFAULT_DEV_DATA, loadInstanceConfig } from '@waxseal/instance';
import { WaxsealError } from '@waxseal/core';
import { openSigner, type Signer } from '@waxseal/keys';
import { parseTrustedRootJson } from '@waxseal/bundle';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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
    config: { type: 'string' },
    'trusted-root': { type: 'string' },
    'tsa-key': { type: 'string' },
  },
  positionals: [1, 1] as [number, number],
  help: `Subcommands:
  waxseal audit list [--from <seq>] [--limit <n>] [--action <action>] [--result ok|denied|error]
      Prints records (default the first 100). Refusals (policy, token, bad request) are
      "denied", failures of Waxseal itself (signer, internal) are "error":
      waxseal audit list --result denied
  waxseal audit verify [--anchor <file>] [--trusted-root <file>] [--file <export>]
      Walks the whole chain; exit 1 at the first edited, reordered, inserted or deleted record.
      The anchor (default <db>.anchor.json) also catches records cut off the end. A pruned log
      verifies from its signed anchor, checked against the TSA keys of the trusted root: a
      missing, unsigned or altered one fails. --file checks an export or archive instead (its
      signed anchor too, given a trusted root).
  waxseal audit export [--before <time>] [--out <file>] [--tsa-key <key-uri>]
      Writes the records as JSON lines (default stdout). --before <time> writes only the
      records older than <time> (ISO 8601, e.g. 2026-01-01 or 2026-01-01T00:00:00Z): the
      archive that prune then removes. With the instance's TSA key, the last line is a signed
      anchor (where the archive starts and ends, its SHA-256): it verifies on its own.
  waxseal audit prune --before <time> --archive <file> | --discard [--tsa-key <key-uri>]
      Removes the records older than <time> that the archive holds, after verifying the whole
      log and checking the archive against it; appends an audit.prune record naming the last
      record removed and stores a signed anchor (signed with the TSA key) stating where the
      kept records start: audit verify keeps passing from there. --discard removes them
      without an archive.

Options:
  --db <file>             the audit database (default: <data>/audit.db, or the config's)
  --data <dir>            a dev instance's data folder (default ${DEFAULT_DEV_DATA})
  --config <file>         a waxseal serve configuration: its audit database, anchor, TSA key
                          and trusted root
  --trusted-root <file>   the instance's trusted_root.json, as its clients get it (default:
                          <data>/trusted_root.json)
  --tsa-key <key-uri>     the instance's TSA key, which signs anchors (default: the config's,
                          or <data>/tsa/tsa.key)`,
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
  // Where things are: a serve configuration names them; a dev data folder holds them (looked
  // in only when the database is its own, not one named with --db alone).
  const cfg = v.config ? loadInstanceConfig(v.config) : undefined;
  const data = v.db && !v.data ? undefined : (v.data ?? DEFAULT_DEV_DATA);
  const db = v.db ?? cfg?.audit.db ?? join(data!, 'audit.db');
  const anchorFile = v.anchor ?? cfg?.audit.anchor;
  const anchor = anchorFile ? { anchorPath: anchorFile } : {};
  const trustedRoot =
    v['trusted-root'] ??
    (cfg
      ? join(cfg.data, 'trusted_root.json')
      : data && existsSync(join(data, 'trusted_root.json'))
        ? join(data, 'trusted_root.json')
        : undefined);
  const tsaKey =
    v['tsa-key'] ??
    cfg?.tsa.key ??
    (data && existsSync(join(data, 'tsa', 'tsa.key')) ? pathToFileURL(join(data, 'tsa', 'tsa.key')).href : undefined);
  const anchorKeys = (): AnchorKey[] | undefined => {
    if (trustedRoot === undefined) return undefined;
    let text: string;
    try {
      text = readFileSync(trustedRoot, 'utf8');
    } catch (e) {
      throw new WaxsealError('ERR_IO', `cannot read trusted root ${trustedRoot}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    return anchorKeysFromTrustedRoot(parseTrustedRootJson(text));
  };
  const withSigner = async <T>(required: boolean, f: (signer: Signer | undefined) => Promise<T>): Promise<T> => {
    if (tsaKey === undefined) {
      if (required) throw new UsageError('prune signs where the kept records start with the TSA key: give --tsa-key <key-uri> or --config');
      return f(undefined);
    }
    const signer = await openSigner(tsaKey);
    try {
      return await f(signer);
    } finally {
      await signer.close?.();
    }
  };
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
      const keys = anchorKeys();
      const withKeys = keys ? { anchorKeys: keys } : {};
      const r = v.file ? await auditVerifyExport(v.file, { ...anchor, ...withKeys }) : await auditVerify(db, { ...anchor, ...withKeys });
      const from = r.base ? `, starting after seq ${r.base.seq} (${r.base.hash})` : '';
      const signed = r.signed
        ? r.signed.signedBy
          ? `; signed anchor (${r.signed.event} through seq ${r.signed.through.seq}, ${r.signed.time}) signed by ${r.signed.signedBy}`
          : `; signed anchor (${r.signed.event} through seq ${r.signed.through.seq}) not checked: no --trusted-root`
        : '';
      ui.result(
        { ok: true, ...r },
        `audit log OK: ${r.records} records${from}, head ${r.head ? `#${r.head.seq} ${r.head.hash}` : '(empty)'}${r.anchored ? ', matches the anchor' : ''}${signed}`,
      );
      return 0;
    }
    case 'export': {
      const before = v.before === undefined ? undefined : time(v.before, '--before');
      const r = await withSigner(false, (signer) =>
        auditExport(db, v.out ?? process.stdout, { ...(before ? { before } : {}), ...(signer ? { signer } : {}) }),
      );
      if (v.out)
        ui.result(
          { ok: true, ...r, out: v.out },
          `exported ${r.records} records to ${v.out}${r.head ? ` (through seq ${r.head.seq})` : ''}${r.signed ? ', signed anchor on the last line' : ', unsigned (no --tsa-key)'}`,
        );
      return 0;
    }
    case 'prune': {
      const before = time(v.before, '--before');
      if (!v.archive && !v.discard) throw new UsageError('prune needs --archive <file> (from audit export --before) or --discard');
      if (v.archive && v.discard) throw new UsageError('give --archive or --discard, not both');
      const r = await withSigner(true, (signer) => {
        // Earlier anchors may be signed by a TSA key since rotated: the trusted root lists them all.
        const keys = [...(anchorKeys() ?? []), anchorKeyOf(signer!)];
        return auditPrune(db, {
          before,
          ...anchor,
          signer: signer!,
          anchorKeys: keys,
          ...(v.archive ? { archivePath: v.archive } : { discard: true }),
        });
      });
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
