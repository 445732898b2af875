// The token `waxseal login` obtained, cached for its lifetime in the user's config folder
// (mode 0600). Only the ID token is kept; it expires in minutes.
import { readFileSync, writeFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { fromBase64Url } from '@waxseal/core';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WAXSEAL_CONFIG_DIR) return env.WAXSEAL_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'waxseal');
}

const file = (env: NodeJS.ProcessEnv) => join(configDir(env), 'token.json');

function expiry(token: string): number {
  try {
    const p = JSON.parse(Buffer.from(fromBase64Url(token.split('.')[1] ?? '')).toString()) as { exp?: number };
    return typeof p.exp === 'number' ? p.exp : 0;
  } catch {
    return 0;
  }
}

/**
 * Replaces the cache with a new file: written under a fresh name (exclusive create, 0600 whatever
 * the umask or the old file's mode) and renamed over the old one, so a token is never readable by
 * others for a moment and a symlink planted at the cache's name is replaced, not followed.
 */
export function writeCachedToken(token: string, env: NodeJS.ProcessEnv = process.env): string {
  const f = file(env);
  mkdirSync(configDir(env), { recursive: true, mode: 0o700 });
  const temp = `${f}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify({ idToken: token, expiresAt: expiry(token) }), { mode: 0o600, flag: 'wx' });
    renameSync(temp, f);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
  return f;
}

/** The cached token if it has at least 30 s of life left. */
export function readCachedToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const { idToken, expiresAt } = JSON.parse(readFileSync(file(env), 'utf8')) as { idToken: string; expiresAt: number };
    if (expiresAt * 1000 > Date.now() + 30_000) return idToken;
  } catch {
    // no cache
  }
  return undefined;
}

export function clearCachedToken(env: NodeJS.ProcessEnv = process.env): void {
  rmSync(file(env), { force: true });
}
