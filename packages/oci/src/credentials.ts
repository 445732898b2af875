// Registry credentials where docker, podman and cosign keep them: docker's config.json (`auths`,
// `credHelpers`, `credsStore` through a docker-credential-<name> helper) and containers'
// auth.json (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { WaxsealError, fromBase64, fromUtf8, parseJsonBounded } from '@waxseal/core';
import { DOCKER_HUB } from './reference.ts';

export interface Credential {
  username: string;
  password: string;
}

/** Looks up the credential for a registry (normalised name, e.g. docker.io or host:port). */
export type CredentialSource = (registry: string) => Credential | undefined;

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

function readAuthFile(path: string): AuthFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return parseJsonBounded(readFileSync(path), { maxBytes: 1 << 20, what: path }) as AuthFile;
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read registry credentials ${path}: ${(e as Error).message}`);
  }
}

/** The keys a registry may be filed under in `auths` (docker writes URLs for Docker Hub). */
function keysFor(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === DOCKER_HUB) keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

function fromEntry(e: NonNullable<AuthFile['auths']>[string] | undefined): Credential | undefined {
  if (!e) return undefined;
  if (e.auth) {
    const text = fromUtf8(fromBase64(e.auth, 'auth entry'));
    const colon = text.indexOf(':');
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  if (e.identitytoken) return { username: '<token>', password: e.identitytoken };
  return undefined;
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin (docker's protocol). */
function fromHelper(helper: string, registry: string, env: NodeJS.ProcessEnv): Credential | undefined {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new WaxsealError('ERR_CONFIG', `invalid credential helper name ${JSON.stringify(helper)}`);
  const server = registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
  let out: string;
  try {
    out = execFileSync(`docker-credential-${helper}`, ['get'], {
      input: server,
      env,
      timeout: 30_000,
      maxBuffer: 1 << 20,
      encoding: 'utf8',
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string };
    // The protocol's answer for "no credential": exit status 1 with "credentials not found".
    if (err.code !== 'ENOENT' && /credentials not found/i.test(String(err.stdout ?? ''))) return undefined;
    throw new WaxsealError(
      'ERR_CONFIG',
      `credential helper docker-credential-${helper} failed for ${registry}: ${err.code ?? err.message.split('\n')[0]}`,
    );
  }
  const j = JSON.parse(out) as { Username?: string; Secret?: string };
  if (!j.Secret) return undefined;
  return { username: j.Username ?? '<token>', password: j.Secret };
}

function lookup(file: AuthFile | undefined, registry: string, env: NodeJS.ProcessEnv): Credential | undefined {
  if (!file) return undefined;
  const helper = file.credHelpers?.[registry];
  if (helper) return fromHelper(helper, registry, env);
  for (const k of keysFor(registry)) {
    const c = fromEntry(file.auths?.[k]);
    if (c) return c;
  }
  if (file.credsStore) return fromHelper(file.credsStore, registry, env);
  return undefined;
}

/**
 * Credentials from the usual files, in go-containerregistry's order: docker's config.json
 * (DOCKER_CONFIG or ~/.docker), then REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json.
 */
export function defaultCredentials(env: NodeJS.ProcessEnv = process.env): CredentialSource {
  const files = [
    join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json'),
    ...(env.REGISTRY_AUTH_FILE ? [env.REGISTRY_AUTH_FILE] : []),
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
  ];
  return (registry) => {
    for (const f of files) {
      const c = lookup(readAuthFile(f), registry, env);
      if (c) return c;
    }
    return undefined;
  };
}
