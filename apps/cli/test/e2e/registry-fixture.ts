import { fileURLToPath } from 'node:url';
// Shared by the image interop, inspect and layout tests: the real docker-registry (from
// packages/oci's fixture), a docker config.json for the CLI, and plain-fetch access to the
// registry (independent of @waxseal/oci, so a test reads what was stored with nobody's client).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestRegistry } from '../../../../packages/oci/test/registry-fixture.ts';

export {
  pushImage,
  pushLayout,
  registryToolsMissing,
  startRegistry,
  writeLayout,
  type TestRegistry,
} from '../../../../packages/oci/test/registry-fixture.ts';

/** The vectors folder (../shared/vectors beside the repository, or WAXSEAL_VECTORS): read in place, never copied. */
export const VECTORS = process.env.WAXSEAL_VECTORS ?? fileURLToPath(new URL('../../../../../shared/vectors', import.meta.url));

/** Writes a docker config.json with the registry's credentials; returns the env that points the CLI at it. */
export function dockerConfigFor(reg: TestRegistry, dir: string): Record<string, string> {
  const configDir = join(dir, `docker-${reg.host.replace(/[^0-9]/g, '')}`);
  mkdirSync(configDir, { recursive: true });
  const auths = reg.user ? { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } : {};
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ auths }));
  return { DOCKER_CONFIG: configDir, REGISTRY_AUTH_FILE: join(configDir, 'config.json') };
}

export const sha256Digest = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A plain fetch against the registry's API (basic auth when the registry has credentials). */
export async function regFetch(reg: TestRegistry, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (reg.user) headers.set('authorization', `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}`);
  return fetch(`http://${reg.host}${path}`, { ...init, headers, signal: AbortSignal.timeout(15_000) });
}

/** Uploads a blob with a monolithic POST + PUT (no existence check). */
export async function pushBlob(reg: TestRegistry, repo: string, bytes: Uint8Array | string): Promise<{ digest: string; size: number }> {
  const digest = sha256Digest(bytes);
  const start = await regFetch(reg, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
  const url = new URL(start.headers.get('location')!, `http://${reg.host}`);
  url.searchParams.set('digest', digest);
  const put = await regFetch(reg, url.pathname + url.search, {
    method: 'PUT',
    body: typeof bytes === 'string' ? bytes : Buffer.from(bytes),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}: ${await put.text()}`);
  return { digest, size: Buffer.byteLength(bytes) };
}

/** PUTs manifest bytes under `reference` (a tag or their digest); returns their digest. */
export async function pushManifest(reg: TestRegistry, repo: string, reference: string, bytes: string, mediaType: string): Promise<string> {
  const res = await regFetch(reg, `/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': mediaType },
  });
  if (res.status !== 201) throw new Error(`manifest ${reference}: HTTP ${res.status}: ${await res.text()}`);
  return sha256Digest(bytes);
}

/** GETs a manifest's bytes (checked against `reference` when it is a digest). */
export async function getManifestBytes(reg: TestRegistry, repo: string, reference: string): Promise<Buffer> {
  const res = await regFetch(reg, `/v2/${repo}/manifests/${reference}`, {
    headers: {
      accept:
        'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    },
  });
  if (res.status !== 200) throw new Error(`manifest ${repo}:${reference}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (reference.startsWith('sha256:') && sha256Digest(bytes) !== reference) throw new Error(`manifest ${reference}: digest mismatch`);
  return bytes;
}

export async function getBlobBytes(reg: TestRegistry, repo: string, digest: string): Promise<Buffer> {
  const res = await regFetch(reg, `/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`blob ${digest}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (sha256Digest(bytes) !== digest) throw new Error(`blob ${digest}: digest mismatch`);
  return bytes;
}

export interface PlainDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The referrers of `digest` as the distribution spec defines them: the API, else the tag schema index. */
export async function plainReferrers(reg: TestRegistry, repo: string, digest: string): Promise<PlainDescriptor[]> {
  const api = await regFetch(reg, `/v2/${repo}/referrers/${digest}`);
  if (api.status === 200) return ((await api.json()) as { manifests: PlainDescriptor[] }).manifests;
  const tag = await regFetch(reg, `/v2/${repo}/manifests/${digest.replace(':', '-')}`, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
  });
  if (tag.status === 404) return [];
  if (tag.status !== 200) throw new Error(`referrers tag of ${digest}: HTTP ${tag.status}`);
  return ((await tag.json()) as { manifests: PlainDescriptor[] }).manifests;
}
