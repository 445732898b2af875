// Registry credentials from Kubernetes image pull secrets: the decoded `.dockerconfigjson`
// (`{"auths": {"<registry>": {"auth": base64(user:password)} | {username, password}}}`) or the
// legacy `.dockercfg` (the same map without the `auths` level), as the kubelet reads them. The
// first secret that names a registry wins, in the order given (pod secrets before the service
// account's), as k8schain does.
import { fromBase64, fromUtf8 } from '@waxseal/core';
import type { Credential, CredentialSource } from '@waxseal/oci';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The registry host[:port] a config key names (keys may be URLs such as https://index.docker.io/v1/). */
export function registryOfKey(key: string): string {
  let host = key.replace(/^[a-z]+:\/\//i, '');
  host = host.split('/')[0] ?? host;
  const lower = host.toLowerCase();
  if (lower === 'index.docker.io' || lower === 'registry-1.docker.io' || lower === 'docker.io') return 'docker.io';
  return lower;
}

function credentialOf(entry: unknown): Credential | undefined {
  if (!isObject(entry)) return undefined;
  if (typeof entry.auth === 'string' && entry.auth) {
    try {
      const text = fromUtf8(fromBase64(entry.auth, 'auth entry'));
      const colon = text.indexOf(':');
      if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
    } catch {
      return undefined;
    }
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username) {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken) return { username: '<token>', password: entry.identitytoken };
  return undefined;
}

/** A credential source over pull secrets; unusable entries are ignored (the pull then goes anonymous, and fails if it must). */
export function credentialsFromPullSecrets(secrets: readonly unknown[]): CredentialSource {
  const table = new Map<string, Credential>();
  for (const s of secrets) {
    if (!isObject(s)) continue;
    const auths = isObject(s.auths) ? s.auths : s;
    for (const [key, entry] of Object.entries(auths)) {
      const reg = registryOfKey(key);
      if (table.has(reg)) continue;
      const c = credentialOf(entry);
      if (c) table.set(reg, c);
    }
  }
  return (registry) => table.get(registry.toLowerCase());
}
