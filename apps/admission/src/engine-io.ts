// What the engine fetches besides signatures, each bounded and cached where that is safe:
//   - KMS public keys for `key.kms` authorities (awskms://, gcpkms://), read through Waxseal's
//     KMS backends (@waxseal/keys opens @waxseal/keys-awskms / -gcpkms), cached per URI;
//   - `remote` policies (policy-controller's `policy.remote: {url, sha256sum}`): fetched over https
//     (plain http to loopback only, redirects followed only to such URLs), bounded in size, the
//     body's SHA-256 checked against `sha256sum` as policy-controller's reconciler checks it, then
//     compiled as CEL; cached by hash and URL (the content is pinned);
//   - image config files for `fetchConfigFile`, keyed by platform as policy-controller keys them
//     (`os/architecture[/variant][:osversion]`), for an image or each image of an index.
import { createHash } from 'node:crypto';
import { encodePem, WaxsealError } from '@waxseal/core';
import type { FetchedManifest, RegistryClient, Repo } from '@waxseal/oci';
import { compileCel, isLoopbackHost, MAX_CEL_SOURCE, type CelProgram, type RemotePolicyRef } from '@waxseal/policy';

/** Fetches the PEM public key a KMS URI names. */
export type KmsPublicKeyLoader = (uri: string, signal: AbortSignal) => Promise<string>;
/** Fetches a remote policy's body (the engine checks its hash). */
export type RemotePolicyFetcher = (url: string, signal: AbortSignal) => Promise<Uint8Array>;

/** The default KMS loader: opens the key with Waxseal's KMS backend, keeps its public key, closes it. */
export const kmsPublicKey: KmsPublicKeyLoader = async (uri) => {
  if (!uri.startsWith('awskms://') && !uri.startsWith('gcpkms://')) {
    throw new WaxsealError(
      'ERR_CONFIG',
      `${uri.split('://')[0]}:// keys are not supported by Waxseal admission (awskms:// and gcpkms:// are)`,
    );
  }
  const { openSigner } = await import('@waxseal/keys');
  const signer = await openSigner(uri);
  try {
    return encodePem('PUBLIC KEY', signer.publicKeySpki);
  } finally {
    await signer.close?.().catch(() => undefined);
  }
};

/** Largest remote policy body read (CEL sources are capped at MAX_CEL_SOURCE anyway). */
export const MAX_REMOTE_POLICY_BYTES = MAX_CEL_SOURCE;
const MAX_REDIRECTS = 5;

function allowedUrl(u: URL): boolean {
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
}

/** The default fetcher: GET over https (http to loopback), redirects re-checked, body bounded, 10 s at most. */
export const fetchRemotePolicy: RemotePolicyFetcher = async (url, signal) => {
  let u = new URL(url);
  const sig = AbortSignal.any([signal, AbortSignal.timeout(10_000)]);
  for (let hop = 0; ; hop++) {
    if (!allowedUrl(u)) throw new WaxsealError('ERR_CONFIG', `${u.href}: only https (or http to the loopback interface) is fetched`);
    let res: Response;
    try {
      res = await fetch(u, { signal: sig, redirect: 'manual', headers: { accept: 'text/plain, */*' } });
    } catch (e) {
      throw new WaxsealError('ERR_UNAVAILABLE', `fetching ${u.href} failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new WaxsealError('ERR_UNAVAILABLE', `fetching ${url}: more than ${MAX_REDIRECTS} redirects`);
      u = new URL(res.headers.get('location')!, u);
      continue;
    }
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel();
      throw new WaxsealError('ERR_UNAVAILABLE', `fetching ${u.href} failed: HTTP ${res.status}`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const c of res.body ?? []) {
      size += (c as Uint8Array).length;
      if (size > MAX_REMOTE_POLICY_BYTES) {
        await res.body?.cancel().catch(() => undefined);
        throw new WaxsealError('ERR_BODY_TOO_LARGE', `${u.href} is larger than ${MAX_REMOTE_POLICY_BYTES} bytes`);
      }
      chunks.push(c as Uint8Array);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
};

/** Fetches, hash-checks and compiles one remote policy. */
export async function loadRemotePolicy(ref: RemotePolicyRef, fetcher: RemotePolicyFetcher, signal: AbortSignal): Promise<CelProgram> {
  const body = await fetcher(ref.url, signal);
  const sum = createHash('sha256').update(body).digest('hex');
  if (sum !== ref.sha256sum)
    throw new WaxsealError('ERR_INVALID_INPUT', `failed to check sha256sum from policy remote: ${ref.sha256sum} got ${sum}`, {
      check: 'policy.remote',
    });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the remote policy is not UTF-8 text', { check: 'policy.remote' });
  }
  return compileCel(text, `remote policy ${ref.url}`);
}

/** ggcr's Platform.String(): os[/architecture][/variant][:osversion]. */
function platformKey(cfg: Record<string, unknown>): string {
  const s = (k: string) => (typeof cfg[k] === 'string' ? (cfg[k] as string) : '');
  if (!s('os')) return '';
  return `${s('os')}${s('architecture') ? `/${s('architecture')}` : ''}${s('variant') ? `/${s('variant')}` : ''}${s('os.version') ? `:${s('os.version')}` : ''}`;
}

const MAX_CONFIG_BYTES = 4 << 20;
const MAX_CONFIG_IMAGES = 64;

/**
 * The config file of the image `digest`, or of every image of the index it names, by platform.
 * `manifest`: the image's manifest when the caller already fetched it (resolving a tag), not fetched again.
 */
export async function fetchConfigFiles(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  manifest?: FetchedManifest,
  depth = 0,
): Promise<Record<string, unknown>> {
  const m = manifest?.digest === digest ? manifest : await client.getManifest(repo, digest);
  if (m.parsed.kind === 'index') {
    if (depth > 0) throw new WaxsealError('ERR_INVALID_INPUT', `${repo.repository}@${digest}: nested image indexes are not read`);
    const entries = m.parsed.index.manifests.slice(0, MAX_CONFIG_IMAGES);
    const parts = await Promise.all(entries.map((d) => fetchConfigFiles(client, repo, d.digest, undefined, depth + 1)));
    return Object.assign({}, ...parts) as Record<string, unknown>;
  }
  const bytes = await client.getBlob(repo, m.parsed.manifest.config, MAX_CONFIG_BYTES);
  let cfg: unknown;
  try {
    cfg = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', `${repo.repository}@${digest}: the image config is not JSON`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new WaxsealError('ERR_INVALID_INPUT', `${repo.repository}@${digest}: the image config is not a JSON object`);
  return { [platformKey(cfg as Record<string, unknown>)]: cfg };
}
