// Reading verified identity-token claims: typed claim access, e-mail and URI checks, the
// JSONPath subset of IssuerClaim, and Go's url.JoinPath. Wrong or missing claims are
// ERR_IDENTITY_CLAIMS.
import { WaxsealError } from '@waxseal/core';

export function claimsError(message: string): never {
  throw new WaxsealError('ERR_IDENTITY_CLAIMS', message);
}

export type Claims = Readonly<Record<string, unknown>>;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function requireString(claims: Claims, name: string, what = 'identity token'): string {
  const v = claims[name];
  if (v === undefined || v === null || v === '') claimsError(`${what} lacks the ${name} claim`);
  if (typeof v !== 'string') claimsError(`${what} claim ${name} must be a string`);
  return v;
}

export function optionalString(claims: Claims, name: string): string {
  const v = claims[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') claimsError(`identity token claim ${name} must be a string`);
  return v;
}

export function subjectOf(claims: Claims): string {
  const sub = claims.sub;
  if (sub === undefined || sub === null) return '';
  if (typeof sub !== 'string') claimsError('identity token claim sub must be a string');
  return sub;
}

export function requireSubject(claims: Claims): string {
  const sub = subjectOf(claims);
  if (sub === '') claimsError('identity token lacks the sub claim');
  return sub;
}

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";

const EMAIL_RE = new RegExp(
  `^${ATEXT}+(?:\\.${ATEXT}+)*@[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)+$`,
);

/** An RFC 5322 dot-atom address with a dotted domain, ASCII only (the SAN is an IA5String). */
export function isEmailAddress(s: string): boolean {
  if (s.length > 254) return false;
  const at = s.lastIndexOf('@');
  if (at < 1 || at > 64) return false;
  return EMAIL_RE.test(s);
}

/** A URI scheme prefix ("https:"). */
export const SCHEME_RE = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

// Characters RFC 3986 allows in a URI; anything else (spaces, backslashes, non-ASCII) is refused
// so every consumer parses the SAN the same way.
const URI_CHARS_RE = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

export function requireAbsoluteUri(value: string, what: string): URL {
  if (!URI_CHARS_RE.test(value)) claimsError(`${what} ${JSON.stringify(value)} is not a valid URI`);
  if (!SCHEME_RE.test(value)) claimsError(`${what} ${JSON.stringify(value)} is not an absolute URI`);
  try {
    return new URL(value);
  } catch {
    claimsError(`${what} ${JSON.stringify(value)} is not a valid URI`);
  }
}

/** `email_verified` as Fulcio reads it: true/"true"/"True" or false/"false"/"False"; absent = false. */
export function emailVerified(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (v === true || v === 'true' || v === 'True') return true;
  if (v === false || v === 'false' || v === 'False') return false;
  claimsError('identity token claim email_verified is not a boolean');
}

// A bad IssuerClaim path is a configuration error (it is checked when the configuration loads).
function pathError(message: string): never {
  throw new WaxsealError('ERR_CONFIG', message);
}

type PathStep = { key: string } | { index: number };

/** A JSONPath subset for IssuerClaim: $.a.b, $['a/b'], $["a"], $.list[0]. */
export function parseJsonPath(path: string, where = 'JSONPath'): PathStep[] {
  if (!path.startsWith('$')) pathError(`${where}: ${JSON.stringify(path)} must start with $`);
  const steps: PathStep[] = [];
  let i = 1;
  while (i < path.length) {
    const rest = path.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_-]+)/.exec(rest))) steps.push({ key: m[1]! });
    else if ((m = /^\['((?:[^'\\]|\\.)*)'\]/.exec(rest))) steps.push({ key: m[1]!.replace(/\\(.)/g, '$1') });
    else if ((m = /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest))) steps.push({ key: m[1]!.replace(/\\(.)/g, '$1') });
    else if ((m = /^\[(\d{1,6})\]/.exec(rest))) steps.push({ index: Number(m[1]) });
    else pathError(`${where}: unsupported JSONPath syntax at ${JSON.stringify(rest)}`);
    i += m[0].length;
  }
  if (steps.length === 0) pathError(`${where}: JSONPath ${JSON.stringify(path)} selects the whole token`);
  return steps;
}

export function evalJsonPath(claims: Claims, path: string): unknown {
  let cur: unknown = claims;
  for (const step of parseJsonPath(path)) {
    if ('key' in step) {
      if (!isPlainObject(cur) || !Object.hasOwn(cur, step.key)) claimsError(`identity token has no claim at ${path}`);
      cur = cur[step.key];
    } else {
      if (!Array.isArray(cur) || step.index >= cur.length) claimsError(`identity token has no claim at ${path}`);
      cur = cur[step.index];
    }
  }
  return cur;
}

/** url.JoinPath as Go does it: path.Join of the segments (cleaning '.' and '..'), path-escaped. */
export function joinUrlPath(base: string, ...elems: string[]): string {
  const u = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)(\/[^?#]*)?$/i.exec(base);
  if (!u) throw new TypeError(`joinUrlPath: bad base ${base}`);
  const segs: string[] = [];
  for (const part of [u[2] ?? '', ...elems].join('/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') segs.pop();
    else segs.push(part);
  }
  const trailing = (elems.length ? elems[elems.length - 1]! : (u[2] ?? '')).endsWith('/') && segs.length > 0;
  const escaped = segs.map((s) =>
    s.replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@%]/gu, (c) =>
      [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
    ),
  );
  return `${u[1]}/${escaped.join('/')}${trailing ? '/' : ''}`;
}
