// Image references as docker, podman and cosign read them: [registry/]repository[:tag][@digest].
// Pure: no lookups. Docker Hub names are normalised the way docker does (docker.io/library/x).
import { WaxsealError } from '@waxseal/core';

export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's registry API (what go-containerregistry calls it). */
export const DOCKER_HUB_API = 'index.docker.io';

export interface ImageReference {
  /** Registry host[:port], normalised (docker.io for Docker Hub). */
  registry: string;
  /** Repository path inside the registry (library/x for Docker Hub's official images). */
  repository: string;
  tag?: string;
  /** `sha256:<hex>` when the reference pins a digest. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const MAX_NAME = 255;

function bad(ref: string, why: string): never {
  throw new WaxsealError('ERR_INVALID_INPUT', `invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Is `digest` a well-formed `sha256:<64 hex>` digest (the only algorithm accepted)? */
export function isDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

/** Parses an image reference; throws ERR_INVALID_INPUT naming what is wrong. */
export function parseReference(ref: string): ImageReference {
  if (ref.length === 0 || ref.length > 1024) bad(ref, 'empty or too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(ref, 'the digest must be sha256:<64 lowercase hex digits>');
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(ref, `invalid tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) bad(ref, `invalid registry host ${JSON.stringify(registry)}`);
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    bad(ref, 'repository names are lowercase letters, digits and separators (. _ __ -), joined by /');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME) bad(ref, 'repository name is longer than 255 characters');
  const out: ImageReference = { registry, repository };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (tag === undefined && digest === undefined) out.tag = 'latest';
  return out;
}

/** Parses `registry/repository` (no tag or digest), as COSIGN_REPOSITORY names one. */
export function parseRepository(repo: string): { registry: string; repository: string } {
  const r = parseReference(repo);
  if (r.digest || repo.endsWith(`:${r.tag}`)) bad(repo, 'a repository takes no tag or digest');
  return { registry: r.registry, repository: r.repository };
}

/** The canonical text of a reference (`registry/repo[:tag][@digest]`). */
export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag && !r.digest ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The host to send registry API requests to. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** Hosts that may be reached over plain HTTP without being named insecure (as docker and ggcr do). */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.endsWith('.localhost');
}
