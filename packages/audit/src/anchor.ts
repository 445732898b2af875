// The anchor: the log's head (seq, hash) kept outside the log, so that records cut off the end
// (which leaves a valid shorter chain) are detected. Written only after the records it names are
// durable: an anchor behind the log is harmless, one ahead of it means records vanished.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { WaxsealError, toHex } from '@waxseal/core';
import type { AuditHead } from './record.ts';

export interface AuditAnchor {
  read(): Promise<AuditHead | undefined>;
  write(head: AuditHead): Promise<void>;
}

function anchorText(head: AuditHead): string {
  return `${JSON.stringify({ seq: head.seq, hash: head.hash, time: new Date().toISOString() })}\n`;
}

/**
 * Anchor in a small JSON file `{"seq":N,"hash":"…","time":"…"}`, replaced atomically (fsync, then
 * rename). It only helps if an attacker who can rewrite the database cannot also rewrite this
 * file: put it on another volume or host, or copy it regularly to write-once storage (docs/audit.md).
 */
export class FileAuditAnchor implements AuditAnchor {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async read(): Promise<AuditHead | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WaxsealError('ERR_IO', `cannot read audit anchor ${this.path}`, { cause: e });
    }
    try {
      const v = JSON.parse(text) as { seq?: unknown; hash?: unknown };
      if (Number.isSafeInteger(v.seq) && typeof v.hash === 'string') return { seq: v.seq as number, hash: v.hash };
    } catch {
      // fall through
    }
    throw new WaxsealError('ERR_AUDIT_TAMPERED', `audit anchor ${this.path} is unreadable`);
  }

  async write(head: AuditHead): Promise<void> {
    const tmp = `${this.path}.${toHex(randomBytes(6))}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(anchorText(head));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** write() on the calling thread, for the writer thread (where blocking is the point). */
  writeSync(head: AuditHead): void {
    const tmp = `${this.path}.${toHex(randomBytes(6))}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, anchorText(head));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, this.path);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // the rename's error is the one to report
      }
      throw e;
    }
  }
}
