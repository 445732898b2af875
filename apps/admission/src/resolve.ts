// Tag -> digest resolution for the mutating webhook, as go-containerregistry's ResolveDigest does
// it: HEAD the manifest and read Docker-Content-Digest, or GET it and hash the bytes when the
// registry does not say. The digest is checked again by the validating webhook, which fetches the
// manifest by digest.
import { createHash } from 'node:crypto';
import { WaxsealError } from '@waxseal/core';
import { RegistryClient, parseReference, type RegistryOptions } from '@waxseal/oci';
import { credentialsFromPullSecrets } from './pull-secrets.ts';

export type DigestResolver = (image: string, pullSecrets: readonly unknown[], signal: AbortSignal) => Promise<string>;

/** Rejects when `signal` aborts, whatever `p` does (the registry client has its own timeouts, not signals). */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortError(signal: AbortSignal, what: string): WaxsealError {
  const reason = signal.reason instanceof WaxsealError ? signal.reason.message : 'the admission deadline passed';
  return new WaxsealError('ERR_UNAVAILABLE', `${what}: ${reason}`, { check: 'admission.deadline' });
}

/** Clients by credential set, so bearer tokens are reused across reviews; bounded. */
const MAX_CLIENTS = 64;

export function registryResolver(opts: RegistryOptions = {}): DigestResolver {
  const clients = new Map<string, RegistryClient>();
  const clientFor = (pullSecrets: readonly unknown[]): RegistryClient => {
    const key = pullSecrets.length ? createHash('sha256').update(JSON.stringify(pullSecrets)).digest('hex') : '';
    let c = clients.get(key);
    if (c) {
      clients.delete(key);
      clients.set(key, c);
      return c;
    }
    c = new RegistryClient({
      ...opts,
      credentials: pullSecrets.length ? credentialsFromPullSecrets(pullSecrets) : (opts.credentials ?? (() => undefined)),
    });
    clients.set(key, c);
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value!);
    return c;
  };
  return async (image, pullSecrets, signal) => {
    const ref = parseReference(image);
    if (ref.digest) return ref.digest;
    const client = clientFor(pullSecrets);
    const repo = { registry: ref.registry, repository: ref.repository };
    const tag = ref.tag ?? 'latest';
    const work = (async () => {
      const head = await client.headManifest(repo, tag);
      if (head) return head.digest;
      // No digest header (or a 404 some registries give HEAD): GET and hash.
      return (await client.getManifest(repo, tag)).digest;
    })();
    work.catch(() => {}); // settled later than the race when the deadline wins
    return raceSignal(work, signal, `resolving ${image}`);
  };
}
