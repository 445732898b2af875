// Writing a secret (a private key) to disk so that only its owner can read it, whatever the umask
// and whatever was at the path before. writeFileSync's `mode` applies only when it creates the
// file (an existing 0644 file stays 0644) and it follows a symlink at the path (writing the key
// wherever the link points). So the secret goes into a new file, created exclusively (no symlink
// followed) with mode 0600 beside the target, synced, then moved into place; the folder is synced
// so that the name survives a crash too.
import { closeSync, constants, fchmodSync, fsyncSync, linkSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { WaxsealError, toHex } from '@waxseal/core';

export interface SecretFileOptions {
  /** Replace an existing regular file at the path (a symlink is refused even then). */
  force?: boolean;
  /** Added to the refusal of an existing file: how the user can force it (e.g. "pass --force"). */
  forceHint?: string;
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);

/**
 * Refuses, before anything is written, a path where writeSecretFile would refuse: a symlink, a
 * non-file, or (without `force`) an existing file. Lets a command check every target first so
 * that it does not stop half-way with some keys written.
 */
export function checkSecretFileTarget(path: string, opts: SecretFileOptions = {}): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw new WaxsealError('ERR_IO', `cannot inspect ${path}: ${errno(e)}`, { cause: e });
  }
  if (st.isSymbolicLink()) throw new WaxsealError('ERR_CONFLICT', `${path} is a symbolic link: refusing to write a private key through it`);
  if (!st.isFile()) throw new WaxsealError('ERR_CONFLICT', `${path} exists and is not a regular file`);
  if (!opts.force)
    throw new WaxsealError(
      'ERR_CONFLICT',
      `${path} exists: refusing to replace a private key${opts.forceHint ? ` (${opts.forceHint})` : ''}`,
    );
}

function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
  } catch {
    return; // platforms that cannot open a folder (Windows) have no folder fsync either
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    // Some file systems do not sync folders (EINVAL); the file itself is already on disk.
    if (errno(e) !== 'EINVAL' && errno(e) !== 'ENOTSUP') throw new WaxsealError('ERR_IO', `cannot sync ${dir}: ${errno(e)}`, { cause: e });
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to `path` as a new file of mode 0600. Refuses (ERR_CONFLICT) a symlink at `path`,
 * always, and an existing file unless `force`. Without `force` the final step is a hard link,
 * which fails if anything appeared at `path` meanwhile; with it, a rename, which replaces the
 * name itself (never writing through a link that appeared meanwhile).
 */
export function writeSecretFile(path: string, data: string | Uint8Array, opts: SecretFileOptions = {}): void {
  checkSecretFileTarget(path, opts);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${toHex(randomBytes(8))}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot create a file in ${dir}: ${errno(e)}`, { cause: e });
  }
  let renamed = false;
  try {
    try {
      fchmodSync(fd, 0o600); // the umask may have removed bits; never added any
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      for (let off = 0; off < buf.byteLength; ) off += writeSync(fd, buf, off, buf.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (opts.force) {
      checkSecretFileTarget(path, opts);
      renameSync(tmp, path);
      renamed = true;
    } else {
      try {
        linkSync(tmp, path);
      } catch (e) {
        if (errno(e) === 'EEXIST') checkSecretFileTarget(path, opts); // throws the precise refusal
        // File systems without hard links: the check above just ran, rename is the next best.
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(errno(e))) throw e;
        checkSecretFileTarget(path, opts);
        renameSync(tmp, path);
        renamed = true;
      }
    }
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_IO', `cannot write ${path}: ${errno(e)}`, { cause: e });
  } finally {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
  }
  syncFolder(dir);
}
