// What `waxseal audit list | verify | export` run (the CLI parses flags and prints).
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { WaxsealError } from '@waxseal/core';
import { AuditLog, FileAuditAnchor, verifyAuditExport } from './log.ts';
import type { AuditHead, AuditRecord, AuditResult, AuditVerifyResult } from './record.ts';

export interface AuditListOptions {
  from?: number;
  /** Default 100. */
  limit?: number;
  action?: string;
  result?: AuditResult;
  /** Only records whose identity issuer/subject/san or actor contains this text. */
  who?: string;
}

export interface AuditCliOptions {
  /** Anchor file; default `<db>.anchor.json`; false to skip the anchor. */
  anchorPath?: string | false;
}

function openReadOnly(dbPath: string, anchorPath?: string | false): AuditLog {
  return AuditLog.open(dbPath, { readOnly: true, ...(anchorPath === undefined ? {} : { anchorPath }) });
}

/** Records matching the filters, in seq order (at most `limit`). Does not verify the chain. */
export async function auditList(dbPath: string, opts: AuditListOptions = {}): Promise<AuditRecord[]> {
  const log = openReadOnly(dbPath, false);
  try {
    const limit = opts.limit ?? 100;
    const out: AuditRecord[] = [];
    for await (const r of log.list(opts.from === undefined ? {} : { from: opts.from })) {
      if (out.length >= limit) break;
      if (opts.action !== undefined && r.action !== opts.action) continue;
      if (opts.result !== undefined && r.result !== opts.result) continue;
      if (
        opts.who !== undefined &&
        ![r.actor, r.identity?.issuer, r.identity?.subject, r.identity?.san].some((s) => s?.includes(opts.who!))
      )
        continue;
      out.push(r);
    }
    return out;
  } finally {
    await log.close();
  }
}

/** Verifies the whole chain against the anchor; throws ERR_AUDIT_TAMPERED at the first bad seq. */
export async function auditVerify(dbPath: string, opts: AuditCliOptions & { expectedHead?: AuditHead } = {}): Promise<AuditVerifyResult> {
  const log = openReadOnly(dbPath, opts.anchorPath);
  try {
    return await log.verify(opts.expectedHead ? { expectedHead: opts.expectedHead } : {});
  } finally {
    await log.close();
  }
}

/**
 * Writes the log as JSON lines to `out` (a file path, created or truncated, or a writable
 * stream such as process.stdout). Returns the number of records and the head written.
 */
export async function auditExport(
  dbPath: string,
  out: string | NodeJS.WritableStream,
): Promise<{ records: number; head: AuditHead | undefined }> {
  const log = openReadOnly(dbPath, false);
  const stream = typeof out === 'string' ? createWriteStream(out, { mode: 0o600 }) : out;
  let records = 0;
  let head: AuditHead | undefined;
  try {
    for await (const line of log.export()) {
      if (!stream.write(line)) await once(stream, 'drain');
      const r = JSON.parse(line) as AuditRecord;
      head = { seq: r.seq, hash: r.hash };
      records++;
    }
  } finally {
    await log.close();
    if (typeof out === 'string') {
      const s = stream as ReturnType<typeof createWriteStream>;
      await new Promise<void>((resolve, reject) =>
        s.end((e?: Error | null) => (e ? reject(new WaxsealError('ERR_IO', `cannot write ${out}`, { cause: e })) : resolve())),
      );
    }
  }
  return { records, head };
}

/** Verifies an exported JSON-lines file offline, optionally against an anchor file. */
export async function auditVerifyExport(
  exportPath: string,
  opts: { anchorPath?: string; anchor?: AuditHead } = {},
): Promise<AuditVerifyResult> {
  const anchor = opts.anchor ?? (opts.anchorPath ? await new FileAuditAnchor(opts.anchorPath).read() : undefined);
  try {
    return await verifyAuditExport(createReadStream(exportPath), anchor ? { anchor } : {});
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_IO', `cannot read audit export ${exportPath}: ${(e as Error).message}`, { cause: e });
  }
}
