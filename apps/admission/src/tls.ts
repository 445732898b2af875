// The webhook's certificate and key, read from files and reloaded when they change (cert-manager
// or a Secret mount rotates them in place: a symlink swap in the mounted folder). Changes are seen
// through fs.watch on both folders and, because watches miss events on some filesystems, a poll
// of the files' contents. A new pair is applied with setSecureContext (new connections get it)
// only once it loads as a matching certificate and key; until then the old pair keeps serving.
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import type { Server } from 'node:https';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { WaxsealError } from '@waxseal/core';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks a certificate/key pair; throws ERR_CONFIG naming the files. */
export function readTlsPair(files: TlsFiles): TlsPair {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read the TLS certificate or key: ${(e as Error).message}`, { cause: e });
  }
  try {
    // Fails on a malformed PEM and on a key that does not belong to the certificate.
    createSecureContext({ cert, key });
  } catch (e) {
    throw new WaxsealError(
      'ERR_CONFIG',
      `TLS certificate ${files.certFile} and key ${files.keyFile} do not load as a pair: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  return { cert, key };
}

export interface TlsReloaderOptions {
  /** Content poll interval (default 10 s; 0 turns the poll off). */
  pollMs?: number;
  onReload?: () => void;
  onError?: (e: unknown) => void;
}

/** Watches the pair and applies changes to `server`. `close()` stops watching. */
export class TlsReloader {
  readonly #files: TlsFiles;
  readonly #server: Server;
  readonly #opts: TlsReloaderOptions;
  readonly #watchers: FSWatcher[] = [];
  #current: TlsPair;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** How many times a new pair was applied. */
  reloads = 0;

  constructor(server: Server, files: TlsFiles, initial: TlsPair, opts: TlsReloaderOptions = {}) {
    this.#server = server;
    this.#files = files;
    this.#current = initial;
    this.#opts = opts;
    for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
      try {
        const w = watch(dir, () => this.#schedule());
        w.on('error', () => {}); // the poll still covers it
        this.#watchers.push(w);
      } catch {
        // A folder that cannot be watched: the poll covers it.
      }
    }
    const poll = opts.pollMs ?? 10_000;
    if (poll > 0) {
      this.#timer = setInterval(() => this.check(), poll);
      this.#timer.unref();
    }
  }

  #schedule(): void {
    // Writers replace the certificate and the key one after the other: wait for both.
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.check(), 50);
    this.#debounce.unref();
  }

  /** Re-reads the files; applies them when they changed and load as a pair. Returns whether it reloaded. */
  check(): boolean {
    let pair: TlsPair;
    try {
      const cert = readFileSync(this.#files.certFile);
      const key = readFileSync(this.#files.keyFile);
      if (cert.equals(this.#current.cert) && key.equals(this.#current.key)) return false;
      pair = readTlsPair(this.#files);
    } catch (e) {
      this.#opts.onError?.(e);
      return false;
    }
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key });
    this.#current = pair;
    this.reloads++;
    this.#opts.onReload?.();
    return true;
  }

  close(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    for (const w of this.#watchers) w.close();
  }
}
