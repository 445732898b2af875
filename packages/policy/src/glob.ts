// Image globs as policy-controller reads them (pkg/apis/glob): a glob is turned into an anchored
// regular expression where `*` is any run of non-`/` characters (so it crosses `:` and `@`) and
// `**` is any run of characters; `.` is literal. `*` alone means index.docker.io/library/* and
// `*/*` means index.docker.io/*/*. Only [A-Za-z0-9-_:/*.@] may appear. Images are compared by their
// fully qualified name as go-containerregistry prints it (index.docker.io for Docker Hub,
// library/ for single-component names, :latest when no tag or digest is written); like
// policy-controller, a glob that does not match the qualified name is tried on the image as
// written when that differs.
import { compileRegexp, quoteRegexp, WaxsealError, type Regexp } from '@waxseal/core';
import { parseReference } from '@waxseal/oci';

const VALID_GLOB = /^[a-zA-Z0-9\-_:/*.@]+$/;

/** A compiled image glob. */
export interface ImageGlob {
  readonly glob: string;
  readonly re: Regexp;
}

/** Why `glob` is not a valid image glob, or undefined when it is. */
export function globError(glob: string): string | undefined {
  if (typeof glob !== 'string' || glob === '') return 'the glob is empty';
  if (glob.length > 1024) return 'the glob is longer than 1024 characters';
  const g = expand(glob);
  if (!VALID_GLOB.test(g)) return `invalid glob ${JSON.stringify(glob)}: only letters, digits and - _ : / * . @ may appear`;
  return undefined;
}

function expand(glob: string): string {
  if (glob === '*/*') return 'index.docker.io/*/*';
  if (glob === '*') return 'index.docker.io/library/*';
  return glob;
}

/** Compiles a glob; throws ERR_INVALID_INPUT (check 'policy.glob') when it is not valid. */
export function compileGlob(glob: string): ImageGlob {
  const why = globError(glob);
  if (why) throw new WaxsealError('ERR_INVALID_INPUT', why, { check: 'policy.glob' });
  const g = expand(glob);
  // `**` first (any character), then `*` (any character but `/`); everything else is literal.
  const body = g
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((lit) => quoteRegexp(lit))
        .join('[^/]*'),
    )
    .join('.*');
  return { glob, re: compileRegexp(`^${body}$`) };
}

/**
 * The name go-containerregistry's `Reference.Name()` gives an image: registry/repository[:tag] or
 * registry/repository@digest (a digest drops the tag), with Docker Hub as index.docker.io.
 * Throws ERR_INVALID_INPUT for a malformed reference.
 */
export function qualifiedImageName(image: string): string {
  const r = parseReference(image);
  const registry = r.registry === 'docker.io' ? 'index.docker.io' : r.registry;
  return `${registry}/${r.repository}${r.digest ? `@${r.digest}` : `:${r.tag ?? 'latest'}`}`;
}

/** Whether `image` matches `glob` (policy-controller's glob.Match). Throws for an invalid reference. */
export function globMatches(glob: ImageGlob | string, image: string): boolean {
  const g = typeof glob === 'string' ? compileGlob(glob) : glob;
  const name = qualifiedImageName(image);
  if (g.re.test(name)) return true;
  // policy-controller's deprecated fallback: the image as written, when not fully qualified.
  return name !== image && g.re.test(image);
}
