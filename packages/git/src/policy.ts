// The presubmit policy: which signatures a commit may carry. It reads Chainguard's
// `.chainguard/source.yaml` shape (a subset of policy-controller's Authority), so an existing file
// keeps its meaning:
//
//   spec:
//     authorities:                 # OR-ed: a commit passes when any authority accepts it
//     - name: people               # optional, shown in reports
//       keyless:                   # a gitsign-format signature from the instance's CA
//         url: https://ca.example  # optional, informational (trust comes from the trusted root)
//         identities:              # any may match; each needs an issuer and a subject, exact or RE2
//         - issuer: https://accounts.example.com
//           subjectRegExp: '^.*@example\.com$'
//     - key:                       # an OpenPGP signature by one of these keys
//         kms: https://github.com/web-flow.gpg   # https URL (fetched by the caller), or
//         # data: | -----BEGIN PGP PUBLIC KEY BLOCK----- ...   (inline), or
//         # file: keys/release.asc                              (relative to the policy file)
//
// Unknown fields and invalid regexps are refused at load, naming the field: a typo must never
// widen the policy. Regexps are RE2, unanchored (as in cosign and policy-controller).
import { parse as parseYaml } from 'yaml';
import { WaxsealError, compileRegexp } from '@waxseal/core';
import type { CertificateIdentity } from '@waxseal/verify';

export type KeySource = { type: 'data'; armored: string } | { type: 'url'; url: string } | { type: 'file'; path: string };

export interface KeylessAuthority {
  type: 'keyless';
  name: string;
  url?: string;
  identities: CertificateIdentity[];
}

export interface KeyAuthority {
  type: 'key';
  name: string;
  source: KeySource;
}

export type Authority = KeylessAuthority | KeyAuthority;

export interface SourcePolicy {
  authorities: Authority[];
}

function bad(path: string, message: string): never {
  throw new WaxsealError('ERR_CONFIG', `policy ${path}: ${message}`, { check: 'policy' });
}

function object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, 'must be a mapping');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) bad(`${path}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  return v as Record<string, unknown>;
}

function str(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') bad(path, 'must be a non-empty string');
  return v;
}

function regexp(v: unknown, path: string): string | undefined {
  const s = str(v, path);
  if (s !== undefined) {
    try {
      compileRegexp(s);
    } catch (e) {
      bad(path, `invalid RE2 regular expression ${JSON.stringify(s)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return s;
}

function identity(v: unknown, path: string): CertificateIdentity {
  const o = object(v, path, ['issuer', 'issuerRegExp', 'subject', 'subjectRegExp']);
  const id: CertificateIdentity = {};
  const issuer = str(o.issuer, `${path}.issuer`);
  const issuerRe = regexp(o.issuerRegExp, `${path}.issuerRegExp`);
  const subject = str(o.subject, `${path}.subject`);
  const subjectRe = regexp(o.subjectRegExp, `${path}.subjectRegExp`);
  if ((issuer === undefined) === (issuerRe === undefined)) bad(path, 'needs exactly one of issuer, issuerRegExp');
  if ((subject === undefined) === (subjectRe === undefined)) bad(path, 'needs exactly one of subject, subjectRegExp');
  if (issuer !== undefined) id.issuer = issuer;
  if (issuerRe !== undefined) id.issuerRegExp = issuerRe;
  if (subject !== undefined) id.subjectAlternativeName = subject;
  if (subjectRe !== undefined) id.subjectAlternativeNameRegExp = subjectRe;
  return id;
}

function keySource(v: unknown, path: string): KeySource {
  const o = object(v, path, ['data', 'kms', 'file']);
  const set = ['data', 'kms', 'file'].filter((k) => o[k] !== undefined);
  if (set.length !== 1) bad(path, 'needs exactly one of data, kms, file');
  const data = str(o.data, `${path}.data`);
  if (data !== undefined) {
    if (!data.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) bad(`${path}.data`, 'is not an armored OpenPGP public key');
    return { type: 'data', armored: data };
  }
  const kms = str(o.kms, `${path}.kms`);
  if (kms !== undefined) {
    let u: URL;
    try {
      u = new URL(kms);
    } catch {
      bad(`${path}.kms`, `${JSON.stringify(kms)} is not a URL`);
    }
    if (u.protocol !== 'https:') bad(`${path}.kms`, 'only https:// key URLs are supported');
    return { type: 'url', url: kms };
  }
  return { type: 'file', path: str(o.file, `${path}.file`)! };
}

/** Parses and validates a policy document (YAML or JSON text). */
export function parseSourcePolicy(text: string): SourcePolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text, { strict: true, uniqueKeys: true, maxAliasCount: 0 });
  } catch (e) {
    bad('file', `is not valid YAML: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
  }
  const top = object(doc, '(document)', ['spec', 'apiVersion', 'kind', 'metadata']);
  const spec = object(top.spec, 'spec', ['authorities']);
  if (!Array.isArray(spec.authorities) || spec.authorities.length === 0) bad('spec.authorities', 'must be a non-empty list');
  const authorities = spec.authorities.map((a, i): Authority => {
    const path = `spec.authorities[${i}]`;
    const o = object(a, path, ['name', 'keyless', 'key']);
    const name = str(o.name, `${path}.name`) ?? `authorities[${i}]`;
    if ((o.keyless === undefined) === (o.key === undefined)) bad(path, 'needs exactly one of keyless, key');
    if (o.key !== undefined) return { type: 'key', name, source: keySource(o.key, `${path}.key`) };
    const k = object(o.keyless, `${path}.keyless`, ['url', 'identities']);
    const url = str(k.url, `${path}.keyless.url`);
    if (!Array.isArray(k.identities) || k.identities.length === 0) bad(`${path}.keyless.identities`, 'must be a non-empty list');
    const identities = k.identities.map((id, j) => identity(id, `${path}.keyless.identities[${j}]`));
    return { type: 'keyless', name, identities, ...(url ? { url } : {}) };
  });
  return { authorities };
}

/** Every identity of the policy's keyless authorities, with the authority each belongs to. */
export function keylessIdentities(policy: SourcePolicy): { authority: KeylessAuthority; identity: CertificateIdentity }[] {
  return policy.authorities.flatMap((a) => (a.type === 'keyless' ? a.identities.map((identity) => ({ authority: a, identity })) : []));
}
