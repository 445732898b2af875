// What `waxseal audit list | verify | export | prune` run (the CLI parses flags and prints).
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { once } from 'node:events';
import { WaxsealError } from '@waxseal/core';
import { createHash } from 'node:crypto';
import { AuditLog, FileAuditAnchor, verifyAuditExport, type AuditAnchorLine, type AuditBaseLine } from './log.ts';
import type { SqliteAuditStore } from './store.ts';
import { GENESIS_HASH, type AuditHead, type AuditRecord, type AuditResult, type AuditVerifyResult } from './record.ts';
import {
  ANCHOR_STATEMENT_TYPE,
  anchorKeyOf,
  signAnchor,
  type AnchorKey,
  type AnchorSigner,
  type AnchorStatement,
} from './signed-anchor.ts';

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

/**
 * Verifies the whole chain against the anchor; throws ERR_AUDIT_TAMPERED at the first bad seq. A
 * pruned log verifies from its signed anchor, checked against `anchorKeys` (anchorKeysFromTrustedRoot).
 */
export async function auditVerify(
  dbPath: string,
  opts: AuditCliOptions & { expectedHead?: AuditHead; anchorKeys?: readonly AnchorKey[] } = {},
): Promise<AuditVerifyResult> {
  const log = openReadOnly(dbPath, opts.anchorPath);
  try {
    return await log.verify({
      ...(opts.expectedHead ? { expectedHead: opts.expectedHead } : {}),
      ...(opts.anchorKeys ? { anchorKeys: opts.anchorKeys } : {}),
    });
  } finally {
    await log.close();
  }
}

/**
 * Writes the log as JSON lines to `out` (a file path, created or truncated, or a writable
 * stream such as process.stdout). With `before`, only the run of records older than that time
 * from the first kept one: the archive `auditPrune` then removes. Returns the number of records
 * and the head written.
 */
export async function auditExport(
  dbPath: string,
  out: string | NodeJS.WritableStream,
  opts: { before?: Date; signer?: AnchorSigner } = {},
): Promise<{ records: number; head: AuditHead | undefined; base?: AuditHead; signed?: AnchorStatement }> {
  const log = openReadOnly(dbPath, false);
  const stream = typeof out === 'string' ? createWriteStream(out, { mode: 0o600 }) : out;
  let records = 0;
  let head: AuditHead | undefined;
  let base: AuditHead | undefined;
  let signed: AnchorStatement | undefined;
  const write = async (line: string) => {
    if (!stream.write(line)) await once(stream, 'drain');
  };
  try {
    let through: number | undefined;
    if (opts.before) through = log.lastBefore(opts.before)?.seq ?? (await log.base())?.seq ?? 0;
    const digest = createHash('sha256');
    for await (const line of log.export(through === undefined ? {} : { through })) {
      await write(line);
      digest.update(line);
      const r = JSON.parse(line) as AuditRecord | AuditBaseLine;
      if ('auditBase' in r) {
        base = r.auditBase;
        continue;
      }
      head = { seq: r.seq, hash: r.hash };
      records++;
    }
    // The archive's last line: a signed statement of where it starts and ends and what it holds.
    if (opts.signer && head) {
      signed = {
        type: ANCHOR_STATEMENT_TYPE,
        event: 'export',
        from: base ?? { seq: 0, hash: GENESIS_HASH },
        through: head,
        archiveSha256: digest.digest('hex'),
        time: new Date().toISOString(),
      };
      await write(`${JSON.stringify({ auditAnchor: await signAnchor(signed, opts.signer) } satisfies AuditAnchorLine)}\n`);
    }
  } finally {
    await log.close();
    if (typeof out === 'string') {
      const s = stream as ReturnType<typeof createWriteStream>;
      await new Promise<void>((resolve, reject) =>
        s.end((e?: Error | null) => (e ? reject(new WaxsealError('ERR_IO', `cannot write ${out}`, { cause: e })) : resolve())),
      );
      if (records > 0) await syncFile(out);
    }
  }
  return { records, head: head ?? base, ...(base ? { base } : {}), ...(signed ? { signed } : {}) };
}

/** An archive is only as good as its durability: it is fsynced before anyone prunes on its word. */
async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface AuditPruneOptions extends AuditCliOptions {
  /** Remove the run of records older than this time (from the first kept one). */
  before: Date;
  /** An archive made by `auditExport(db, file, {before})`: only records it holds are removed. */
  archivePath?: string;
  /** Remove the records without an archive (they are gone for good). */
  discard?: boolean;
  /** The instance's TSA key: it signs where the kept records start (the signed anchor). */
  signer?: AnchorSigner;
  /** Keys that may have signed earlier anchors (default: the signer's own). */
  anchorKeys?: readonly AnchorKey[];
}

export interface AuditPruneResult {
  /** Records removed. */
  pruned: number;
  /** The last removed record (the kept chain starts after it); undefined when nothing was removed. */
  through: AuditHead | undefined;
  /** The audit.prune record appended, which names `through`. */
  record: AuditRecord | undefined;
  /** What the signed anchor stored with the prune states. */
  signed?: AnchorStatement;
}

/**
 * Removes old records: verifies the whole log first (a prune never blesses a tampered log), then
 * removes the records older than `before` that the archive holds (checked record for record: the
 * archive must verify and its last record must be the database's record at that seq), and appends
 * an `audit.prune` record naming the last one removed. What remains still verifies, from there.
 */
export async function auditPrune(dbPath: string, opts: AuditPruneOptions): Promise<AuditPruneResult> {
  if (!opts.archivePath && !opts.discard)
    throw new WaxsealError(
      'ERR_INVALID_INPUT',
      'audit prune removes records for good: name the archive that holds them (audit export --before … --out FILE), or pass discard',
    );
  if (!opts.signer)
    throw new WaxsealError(
      'ERR_INVALID_INPUT',
      "audit prune signs where the kept records start with the instance's TSA key: name it (--tsa-key, or the instance's --config)",
    );
  const signer = opts.signer;
  const anchorKeys = opts.anchorKeys ?? [anchorKeyOf(signer)];
  const log = AuditLog.open(dbPath, { thread: false, ...(opts.anchorPath === undefined ? {} : { anchorPath: opts.anchorPath }) });
  try {
    await log.verify({ anchorKeys });
    const base = await log.base();
    let through = log.lastBefore(opts.before);
    let archiveSha256: string | undefined;
    if (through && opts.archivePath) {
      const archive = await auditVerifyExport(opts.archivePath, { anchorKeys });
      archiveSha256 = archive.archiveSha256;
      const archiveStart = archive.base?.seq ?? 0;
      const archiveEnd = archive.head;
      if (archiveStart > (base?.seq ?? 0) || !archiveEnd || archiveEnd.seq <= (base?.seq ?? 0))
        throw new WaxsealError(
          'ERR_INVALID_INPUT',
          `archive ${opts.archivePath} does not hold the oldest records (seq ${(base?.seq ?? 0) + 1} on): export them again`,
        );
      const stored = (log.store as SqliteAuditStore).recordAt(archiveEnd.seq);
      if (!stored || stored.hash !== archiveEnd.hash)
        throw new WaxsealError(
          'ERR_INVALID_INPUT',
          `archive ${opts.archivePath} is not an export of this audit log (seq ${archiveEnd.seq} differs)`,
        );
      if (archiveEnd.seq < through.seq) through = archiveEnd;
    }
    if (!through) return { pruned: 0, through: undefined, record: undefined };
    const statement: AnchorStatement = {
      type: ANCHOR_STATEMENT_TYPE,
      event: 'prune',
      from: base ?? { seq: 0, hash: GENESIS_HASH },
      through,
      ...(archiveSha256 ? { archiveSha256 } : {}),
      time: new Date().toISOString(),
    };
    const signedAnchor = await signAnchor(statement, signer);
    const record = await log.prune(
      through,
      { before: opts.before.toISOString(), ...(opts.archivePath ? { archive: basename(opts.archivePath) } : {}) },
      undefined,
      signedAnchor,
    );
    return { pruned: through.seq - (base?.seq ?? 0), through, record, signed: statement };
  } finally {
    await log.close();
  }
}

/** Verifies an exported JSON-lines file offline, optionally against an anchor file. */
export async function auditVerifyExport(
  exportPath: string,
  opts: { anchorPath?: string; anchor?: AuditHead; anchorKeys?: readonly AnchorKey[] } = {},
): Promise<AuditVerifyResult> {
  const anchor = opts.anchor ?? (opts.anchorPath ? await new FileAuditAnchor(opts.anchorPath).read() : undefined);
  try {
    return await verifyAuditExport(createReadStream(exportPath), {
      ...(anchor ? { anchor } : {}),
      ...(opts.anchorKeys ? { anchorKeys: opts.anchorKeys } : {}),
    });
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_IO', `cannot read audit export ${exportPath}: ${(e as Error).message}`, { cause: e });
  }
}
