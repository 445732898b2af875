// Serves a TUF repository directory read-only over HTTP, laid out as TUF clients expect
// (`<prefix>/N.root.json`, `<prefix>/timestamp.json`, `<prefix>/targets/<sha256>.<name>`).
// Only names matching the repository layout are ever mapped to files, so no request path can
// reach anything else on disk; everything else is a 404 with a JSON error body.
import { open } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import type { Router, Request, Response, Service } from '@waxseal/server';
import { TARGET_NAME_RE } from './repository.ts';

const METADATA_RE = /^(?:[1-9][0-9]{0,9}\.)?(?:root|targets|snapshot|timestamp)\.json$/;
const VERSIONED_RE = /^[1-9][0-9]{0,9}\./;
const TARGET_FILE_RE = /^([0-9a-f]{64})\.(.+)$/;
/** Large enough for any metadata or trust document we publish; refuses to stream giant files. */
const MAX_FILE_BYTES = 32 << 20;

export interface TufServiceOptions {
  /** The repository directory (as written by TufRepository). */
  directory: string;
  /** URL prefix; default `/tuf`. '' serves at the root. */
  prefix?: string;
  /** max-age for the mutable entry points (timestamp.json etc.); default 60 s. */
  mutableMaxAgeSeconds?: number;
}

function contentType(name: string): string {
  return name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

export class TufService implements Service {
  readonly name = 'tuf';
  readonly #dir: string;
  readonly #prefix: string;
  readonly #mutableMaxAge: number;

  constructor(opts: TufServiceOptions) {
    this.#dir = opts.directory;
    this.#prefix = normalisePrefix(opts.prefix ?? '/tuf');
    this.#mutableMaxAge = opts.mutableMaxAgeSeconds ?? 60;
  }

  mount(router: Router, prefix: string = this.#prefix): void {
    const p = normalisePrefix(prefix);
    router.get(`${p}/*`, (req) => this.#serve(req));
  }

  async close(): Promise<void> {}

  /** Maps a request path below the prefix to a file in the repository, or undefined. */
  #resolve(rest: string): { file: string; immutable: boolean; name: string } | undefined {
    const segs = rest.split('/');
    if (segs.length === 1 && METADATA_RE.test(segs[0]!)) {
      return { file: join(this.#dir, segs[0]!), immutable: VERSIONED_RE.test(segs[0]!), name: segs[0]! };
    }
    if (segs.length === 2 && segs[0] === 'targets') {
      const m = TARGET_FILE_RE.exec(segs[1]!);
      if (m && TARGET_NAME_RE.test(m[2]!)) return { file: join(this.#dir, 'targets', segs[1]!), immutable: true, name: m[2]! };
    }
    return undefined;
  }

  async #serve(req: Request): Promise<Response> {
    const rest = req.params['*'] ?? '';
    const hit = this.#resolve(rest);
    if (!hit) throw new WaxsealError('ERR_NOT_FOUND', 'no such TUF file');
    let body: Buffer;
    try {
      // O_NOFOLLOW: a symlink planted in the repository directory is not followed.
      const fh = await open(hit.file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
      try {
        const st = await fh.stat();
        if (!st.isFile() || st.size > MAX_FILE_BYTES) throw new WaxsealError('ERR_NOT_FOUND', 'no such TUF file');
        body = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR' || code === 'EISDIR')
        throw new WaxsealError('ERR_NOT_FOUND', 'no such TUF file');
      throw new WaxsealError('ERR_IO', 'TUF file could not be read', { cause: e });
    }
    return {
      status: 200,
      headers: {
        'content-type': contentType(hit.name),
        'x-content-type-options': 'nosniff',
        'cache-control': hit.immutable ? 'public, max-age=31536000, immutable' : `public, max-age=${this.#mutableMaxAge}`,
      },
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    };
  }
}

function normalisePrefix(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}
