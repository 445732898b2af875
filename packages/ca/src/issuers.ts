// OIDC issuer configuration in Fulcio's format, issuer lookup, and the principal (SAN, proof of
// possession subject, certificate extensions) each issuer type derives from verified claims.
// Pure: no I/O. Everything here fails closed: a configuration that Fulcio would accept but that
// cannot issue safely is refused at load with ERR_CONFIG; claims that do not fit the issuer type
// are refused with ERR_IDENTITY_CLAIMS.
import { parse as parseYaml } from 'yaml';
import { WaxsealError, type FulcioExtensionName } from '@waxseal/core';
import {
  compileTemplate,
  claimToString,
  goFormatValue,
  TemplateExecError,
  type CompiledTemplate,
  type TemplateData,
} from './gotemplate.ts';

export const ISSUER_TYPES = [
  'email',
  'uri',
  'username',
  'spiffe',
  'kubernetes',
  'github-workflow',
  'gitlab-pipeline',
  'buildkite-job',
  'codefresh-workflow',
  'chainguard-identity',
  'ci-provider',
] as const;
export type IssuerType = (typeof ISSUER_TYPES)[number];

export type ChallengeClaim = 'email' | 'sub';

/** One configured issuer; after lookup `issuerUrl` is the concrete `iss` even for meta-issuers. */
export interface OidcIssuer {
  readonly issuerUrl: string;
  /** The meta-issuer pattern this entry came from (`wildcardIssuerUrl`), when it is one. */
  readonly wildcardIssuerUrl?: string;
  /** Expected audience (`aud` must contain it). Defaults to `sigstore`. */
  readonly clientId: string;
  readonly type: IssuerType;
  readonly ciProvider?: string;
  readonly issuerClaim?: string;
  readonly subjectDomain?: string;
  readonly spiffeTrustDomain?: string;
  /** The claim the proof of possession signs, as reported by /api/v2/configuration. */
  readonly challengeClaim: ChallengeClaim;
  readonly description?: string;
  readonly contact?: string;
  readonly environment?: string;
  /** PEM of an extra CA trusted for TLS to this issuer (discovery and JWKS). */
  readonly caCert?: string;
  readonly skipEmailVerification: boolean;
}

/** Certificate extension fields a ci-provider may template (Fulcio's Extensions struct, minus issuer/subject). */
export const CI_EXTENSION_NAMES = [
  'githubWorkflowTrigger',
  'githubWorkflowSha',
  'githubWorkflowName',
  'githubWorkflowRepository',
  'githubWorkflowRef',
  'buildSignerURI',
  'buildSignerDigest',
  'runnerEnvironment',
  'sourceRepositoryURI',
  'sourceRepositoryDigest',
  'sourceRepositoryRef',
  'sourceRepositoryIdentifier',
  'sourceRepositoryOwnerURI',
  'sourceRepositoryOwnerIdentifier',
  'buildConfigURI',
  'buildConfigDigest',
  'buildTrigger',
  'runInvocationURI',
  'sourceRepositoryVisibilityAtSigning',
  'deploymentEnvironment',
] as const satisfies readonly FulcioExtensionName[];
export type CiExtensionName = (typeof CI_EXTENSION_NAMES)[number];

export interface CiProviderMetadata {
  readonly defaultTemplateValues: Readonly<Record<string, string>>;
  readonly extensionTemplates: Readonly<Partial<Record<CiExtensionName, CompiledTemplate>>>;
  readonly subjectAlternativeNameTemplate: CompiledTemplate;
}

export interface MetaIssuer {
  readonly pattern: string;
  readonly regex: RegExp;
  readonly issuer: OidcIssuer;
}

/** Plain records (null-prototype once loaded), so configurations can be spread and merged. */
export interface IssuerConfig {
  readonly oidcIssuers: Readonly<Record<string, OidcIssuer>>;
  /** In configuration order; the first matching pattern wins. */
  readonly metaIssuers: readonly MetaIssuer[];
  readonly ciIssuerMetadata: Readonly<Record<string, CiProviderMetadata>>;
}

function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function entries<T>(r: Readonly<Record<string, T>>): [string, T][] {
  return Object.keys(r).map((k) => [k, r[k]!]);
}

/** What an issuance needs from a verified identity. */
export interface Principal {
  /** The one SAN of the certificate. OtherName SANs use type-id 1.3.6.1.4.1.57264.1.7. */
  readonly san: { readonly type: 'email' | 'uri' | 'otherName'; readonly value: string };
  /** The string the proof of possession signs (email or sub). */
  readonly challenge: string;
  /** Value of extensions 1.1 and 1.8. */
  readonly issuer: string;
  /** Legacy GitHub 1.2-1.6 and CI 1.9-1.23 extension values (empty values are left out). */
  readonly extensions: Readonly<Partial<Record<FulcioExtensionName, string>>>;
  /** Raw `sub` claim (extension 1.24); '' when the token has none. */
  readonly subject: string;
}

// ---------------------------------------------------------------------------------------------
// Loading

function configError(message: string): never {
  throw new WaxsealError('ERR_CONFIG', message);
}

// Field names are matched the way Fulcio's two decoders do in practice (JSON PascalCase, matched
// case-insensitively by Go; YAML kebab-case): lower-cased with '-' and '_' removed.
const norm = (k: string) => k.toLowerCase().replace(/[-_]/g, '');

const ISSUER_FIELDS = {
  issuerurl: 'issuerUrl',
  clientid: 'clientId',
  type: 'type',
  ciprovider: 'ciProvider',
  issuerclaim: 'issuerClaim',
  subjectdomain: 'subjectDomain',
  spiffetrustdomain: 'spiffeTrustDomain',
  challengeclaim: 'challengeClaim',
  description: 'description',
  contact: 'contact',
  environment: 'environment',
  cacert: 'caCert',
  skipemailverification: 'skipEmailVerification',
} as const;

type RawIssuer = Partial<Record<(typeof ISSUER_FIELDS)[keyof typeof ISSUER_FIELDS], unknown>>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function normalizedFields<T extends string>(
  obj: Record<string, unknown>,
  fields: Record<string, T>,
  where: string,
): Partial<Record<T, unknown>> {
  const out: Partial<Record<T, unknown>> = {};
  for (const [k, v] of Object.entries(obj)) {
    const name = fields[norm(k)];
    if (name === undefined) configError(`${where}: unknown field ${JSON.stringify(k)}`);
    if (name in out) configError(`${where}: field ${JSON.stringify(k)} is given twice`);
    out[name] = v;
  }
  return out;
}

function optString(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') configError(`${where} must be a string`);
  return v;
}

/** Parses an issuer configuration (JSON, else YAML) in Fulcio's format. */
export function parseIssuerConfig(text: string, opts: { source?: string; include?: readonly IssuerConfig[] } = {}): IssuerConfig {
  const source = opts.source ?? 'issuer configuration';
  if (typeof text !== 'string') throw new TypeError('parseIssuerConfig expects text');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    try {
      doc = parseYaml(fixAliasKeys(text), { maxAliasCount: 1000, uniqueKeys: true, logLevel: 'error' });
    } catch (e) {
      configError(`${source}: neither valid JSON nor valid YAML (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }
  return issuerConfigFromObject(doc, { source, ...(opts.include ? { include: opts.include } : {}) });
}

// Fulcio's own config.yaml uses alias keys written `*github-type:`; Go's YAML reads that as the
// alias `github-type` followed by ':', while YAML 1.2 allows ':' inside alias names. Rewrite such
// keys to `*github-type :` when `&github-type` is a defined anchor.
function fixAliasKeys(text: string): string {
  const anchors = new Set([...text.matchAll(/&([^\s,[\]{}]+)/g)].map((m) => m[1]!));
  return text.replace(/^(\s*(?:-\s+)?)\*([^\s,[\]{}]+):(?=\s|$)/gm, (all, lead: string, name: string) =>
    anchors.has(name) ? `${lead}*${name} :` : all,
  );
}

/** Builds a validated configuration from an already-decoded document. */
export function issuerConfigFromObject(doc: unknown, opts: { source?: string; include?: readonly IssuerConfig[] } = {}): IssuerConfig {
  const source = opts.source ?? 'issuer configuration';
  if (!isPlainObject(doc)) configError(`${source}: expected a mapping at the top level`);
  const top = normalizedFields(doc, { oidcissuers: 'oidc', metaissuers: 'meta', ciissuermetadata: 'ci', define: 'define' }, source);

  const ciIssuerMetadata = record<CiProviderMetadata>();
  for (const base of opts.include ?? []) for (const [k, v] of entries(base.ciIssuerMetadata)) ciIssuerMetadata[k] = v;
  if (top.ci !== undefined && top.ci !== null) {
    if (!isPlainObject(top.ci)) configError(`${source}: CIIssuerMetadata must be a mapping`);
    for (const [name, raw] of Object.entries(top.ci))
      ciIssuerMetadata[name] = parseCiMetadata(raw, `${source}: ci-issuer-metadata ${name}`);
  }

  const oidcIssuers = record<OidcIssuer>();
  for (const base of opts.include ?? []) for (const [k, v] of entries(base.oidcIssuers)) oidcIssuers[k] = v;
  if (top.oidc !== undefined && top.oidc !== null) {
    if (!isPlainObject(top.oidc)) configError(`${source}: OIDCIssuers must be a mapping`);
    for (const [url, raw] of Object.entries(top.oidc)) oidcIssuers[url] = parseIssuer(url, raw, false, `${source}: issuer ${url}`);
  }

  const metas = new Map<string, MetaIssuer>();
  for (const base of opts.include ?? []) for (const m of base.metaIssuers) metas.set(m.pattern, m);
  if (top.meta !== undefined && top.meta !== null) {
    if (!isPlainObject(top.meta)) configError(`${source}: MetaIssuers must be a mapping`);
    for (const [pattern, raw] of Object.entries(top.meta)) {
      metas.delete(pattern);
      metas.set(pattern, {
        pattern,
        regex: metaIssuerRegex(pattern),
        issuer: parseIssuer(pattern, raw, true, `${source}: meta-issuer ${pattern}`),
      });
    }
  }
  const config: IssuerConfig = { oidcIssuers, metaIssuers: [...metas.values()], ciIssuerMetadata };
  checkCiProviderReferences(config, source);
  return config;
}

/** Combines configurations; later ones override earlier entries with the same URL, pattern or provider name. */
export function mergeIssuerConfigs(...configs: IssuerConfig[]): IssuerConfig {
  const oidcIssuers = record<OidcIssuer>();
  const metas = new Map<string, MetaIssuer>();
  const ci = record<CiProviderMetadata>();
  for (const c of configs) {
    for (const [k, v] of entries(c.oidcIssuers)) oidcIssuers[k] = v;
    for (const m of c.metaIssuers) {
      metas.delete(m.pattern);
      metas.set(m.pattern, m);
    }
    for (const [k, v] of entries(c.ciIssuerMetadata)) ci[k] = v;
  }
  const config: IssuerConfig = { oidcIssuers, metaIssuers: [...metas.values()], ciIssuerMetadata: ci };
  checkCiProviderReferences(config, 'merged issuer configuration');
  return config;
}

function checkCiProviderReferences(config: IssuerConfig, source: string): void {
  const all = [...Object.values(config.oidcIssuers), ...config.metaIssuers.map((m) => m.issuer)];
  for (const iss of all) {
    if (iss.type !== 'ci-provider') continue;
    if (!Object.hasOwn(config.ciIssuerMetadata, iss.ciProvider!)) {
      configError(
        `${source}: issuer ${iss.wildcardIssuerUrl ?? iss.issuerUrl} names ci-provider ${JSON.stringify(iss.ciProvider)}, which has no ci-issuer-metadata entry`,
      );
    }
  }
}

function parseCiMetadata(raw: unknown, where: string): CiProviderMetadata {
  if (!isPlainObject(raw)) configError(`${where}: expected a mapping`);
  const f = normalizedFields(
    raw,
    { defaulttemplatevalues: 'defaults', extensiontemplates: 'extensions', subjectalternativenametemplate: 'san' } as const,
    where,
  );
  const defaults: Record<string, string> = {};
  if (f.defaults !== undefined && f.defaults !== null) {
    if (!isPlainObject(f.defaults)) configError(`${where}: default-template-values must be a mapping`);
    for (const [k, v] of Object.entries(f.defaults)) {
      if (typeof v === 'string') defaults[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') defaults[k] = claimToString(v);
      else if (v === null) defaults[k] = '';
      else configError(`${where}: default value ${k} must be a string`);
    }
  }
  const extensionTemplates: Partial<Record<CiExtensionName, CompiledTemplate>> = {};
  if (f.extensions !== undefined && f.extensions !== null) {
    if (!isPlainObject(f.extensions)) configError(`${where}: extension-templates must be a mapping`);
    const byNorm = Object.fromEntries(CI_EXTENSION_NAMES.map((n) => [n.toLowerCase(), n])) as Record<string, CiExtensionName>;
    for (const [k, v] of Object.entries(f.extensions)) {
      const nk = norm(k);
      if (nk === 'issuer' || nk === 'subject') configError(`${where}: extension ${k} always comes from the token and cannot be templated`);
      const name = byNorm[nk];
      if (name === undefined) configError(`${where}: unknown extension template ${JSON.stringify(k)}`);
      if (name in extensionTemplates) configError(`${where}: extension ${k} is given twice`);
      if (v === null || v === undefined || v === '') continue;
      if (typeof v !== 'string') configError(`${where}: extension template ${k} must be a string`);
      if (v.trim() === '') continue;
      extensionTemplates[name] = compileTemplate(v, `${where}: extension ${k}`);
    }
  }
  const san = optString(f.san, `${where}: subject-alternative-name-template`);
  if (san === undefined || san.trim() === '') configError(`${where}: subject-alternative-name-template is required`);
  return {
    defaultTemplateValues: defaults,
    extensionTemplates,
    subjectAlternativeNameTemplate: compileTemplate(san, `${where}: subject-alternative-name-template`),
  };
}

function parseUrl(s: string, where: string): URL {
  try {
    return new URL(s);
  } catch {
    configError(`${where}: ${JSON.stringify(s)} is not a valid URL`);
  }
}

const SCHEME_RE = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Fulcio's ownership heuristic: the two hostnames share their last two labels. */
export function sameRegisteredDomain(subjectHost: string, issuerHost: string): boolean {
  const a = subjectHost.toLowerCase();
  const b = issuerHost.toLowerCase();
  if (a === b) return true;
  const s = a.split('.');
  const i = b.split('.');
  if (s.length < 2 || i.length < 2) return false;
  return s[s.length - 1] === i[i.length - 1] && s[s.length - 2] === i[i.length - 2];
}

// A meta-issuer's domain relation to SubjectDomain can only be checked when the pattern's last
// two host labels are literal.
function requireLiteralRegisteredDomain(pattern: string, where: string): void {
  const host = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(pattern)?.[1] ?? '';
  if (
    host
      .split('.')
      .slice(-2)
      .some((l) => l.includes('*'))
  )
    configError(`${where}: the issuer pattern's registered domain must not contain '*'`);
}

function parseIssuer(key: string, raw: unknown, meta: boolean, where: string): OidcIssuer {
  if (!isPlainObject(raw)) configError(`${where}: expected a mapping`);
  const f = normalizedFields(raw, ISSUER_FIELDS, where) as RawIssuer;
  const type = optString(f.type, `${where}: Type`);
  if (type === undefined) configError(`${where}: Type is required`);
  if (!(ISSUER_TYPES as readonly string[]).includes(type))
    configError(`${where}: unknown issuer type ${JSON.stringify(type)} (expected one of ${ISSUER_TYPES.join(', ')})`);
  const issuerType = type as IssuerType;

  let issuerUrl = optString(f.issuerUrl, `${where}: IssuerURL`);
  if (meta) {
    // A meta-issuer's concrete URL is the token's `iss`; the pattern is the map key.
    issuerUrl = key;
    if (!key.includes('*')) configError(`${where}: a meta-issuer pattern must contain '*'`);
  } else {
    if (issuerUrl === undefined) issuerUrl = key;
    if (issuerUrl !== key) configError(`${where}: IssuerURL ${JSON.stringify(issuerUrl)} differs from its key; they must be equal`);
  }
  const url = parseUrl(meta ? key.replace(/\*/g, 'x') : issuerUrl, `${where}: issuer URL`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') configError(`${where}: issuer URL must be http(s)`);
  if (url.search || url.hash || url.username || url.password)
    configError(`${where}: issuer URL must not carry a query, fragment or credentials`);

  const clientId = optString(f.clientId, `${where}: ClientID`) ?? 'sigstore';
  const ciProvider = optString(f.ciProvider, `${where}: CIProvider`);
  const issuerClaim = optString(f.issuerClaim, `${where}: IssuerClaim`);
  const subjectDomain = optString(f.subjectDomain, `${where}: SubjectDomain`);
  let spiffeTrustDomain = optString(f.spiffeTrustDomain, `${where}: SPIFFETrustDomain`);
  const challengeRaw = optString(f.challengeClaim, `${where}: ChallengeClaim`);
  const caCert = optString(f.caCert, `${where}: CACert`);
  if (f.skipEmailVerification !== undefined && f.skipEmailVerification !== null && typeof f.skipEmailVerification !== 'boolean') {
    configError(`${where}: SkipEmailVerification must be true or false`);
  }
  const skipEmailVerification = f.skipEmailVerification === true;

  if (issuerClaim !== undefined) {
    if (issuerType !== 'email') configError(`${where}: only email issuers can use issuer claim mapping (IssuerClaim)`);
    parseJsonPath(issuerClaim, `${where}: IssuerClaim`);
  }
  if (skipEmailVerification && issuerType !== 'email') configError(`${where}: SkipEmailVerification only applies to email issuers`);
  if (ciProvider !== undefined && issuerType !== 'ci-provider') configError(`${where}: CIProvider is only meaningful for type ci-provider`);
  if (issuerType === 'ci-provider' && ciProvider === undefined) configError(`${where}: type ci-provider needs CIProvider`);
  if (caCert !== undefined && !/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(caCert)) {
    configError(`${where}: CACert must hold a PEM certificate`);
  }

  if (issuerType === 'spiffe') {
    if (meta) configError(`${where}: SPIFFE meta-issuers are not supported (one trust domain per issuer)`);
    if (spiffeTrustDomain === undefined) configError(`${where}: spiffe issuer must have SPIFFETrustDomain set`);
    const td = spiffeTrustDomain.startsWith('spiffe://') ? spiffeTrustDomain.slice('spiffe://'.length) : spiffeTrustDomain;
    if (!/^[a-z0-9._-]+$/.test(td)) configError(`${where}: SPIFFE trust domain ${JSON.stringify(spiffeTrustDomain)} is invalid`);
    spiffeTrustDomain = td;
  } else if (spiffeTrustDomain !== undefined) {
    configError(`${where}: SPIFFETrustDomain is only meaningful for spiffe issuers`);
  }

  const issuerHost = url.hostname;
  if (issuerType === 'uri') {
    if (subjectDomain === undefined) configError(`${where}: uri issuer must have SubjectDomain set`);
    if (!SCHEME_RE.test(subjectDomain)) configError(`${where}: SubjectDomain for uri must contain a scheme`);
    const sd = parseUrl(subjectDomain, `${where}: SubjectDomain`);
    if (sd.protocol !== url.protocol)
      configError(`${where}: SubjectDomain scheme (${sd.protocol}) and issuer scheme (${url.protocol}) do not match`);
    if (meta) requireLiteralRegisteredDomain(key, where);
    if (!sameRegisteredDomain(sd.hostname, issuerHost)) {
      configError(
        `${where}: SubjectDomain host ${sd.hostname} and issuer host ${issuerHost} must share their top- and second-level domain`,
      );
    }
  } else if (issuerType === 'username') {
    if (subjectDomain === undefined) configError(`${where}: username issuer must have SubjectDomain set`);
    if (SCHEME_RE.test(subjectDomain)) configError(`${where}: SubjectDomain for username must not contain a scheme`);
    if (!HOSTNAME_RE.test(subjectDomain)) configError(`${where}: SubjectDomain ${JSON.stringify(subjectDomain)} is not a hostname`);
    if (meta) requireLiteralRegisteredDomain(key, where);
    if (!sameRegisteredDomain(subjectDomain, issuerHost)) {
      configError(`${where}: SubjectDomain ${subjectDomain} and issuer host ${issuerHost} must share their top- and second-level domain`);
    }
  } else if (subjectDomain !== undefined) {
    configError(`${where}: SubjectDomain is only meaningful for uri and username issuers`);
  }

  let challengeClaim: ChallengeClaim = issuerType === 'email' ? 'email' : 'sub';
  if (challengeRaw !== undefined) {
    if (challengeRaw !== 'email' && challengeRaw !== 'sub') configError(`${where}: ChallengeClaim must be "email" or "sub"`);
    challengeClaim = challengeRaw;
  }

  const issuer: {
    -readonly [K in keyof OidcIssuer]: OidcIssuer[K];
  } = { issuerUrl, clientId, type: issuerType, challengeClaim, skipEmailVerification };
  if (meta) issuer.wildcardIssuerUrl = key;
  if (ciProvider !== undefined) issuer.ciProvider = ciProvider;
  if (issuerClaim !== undefined) issuer.issuerClaim = issuerClaim;
  if (subjectDomain !== undefined) issuer.subjectDomain = subjectDomain;
  if (spiffeTrustDomain !== undefined) issuer.spiffeTrustDomain = spiffeTrustDomain;
  for (const k of ['description', 'contact', 'environment'] as const) {
    const v = optString(f[k], `${where}: ${k}`);
    if (v !== undefined) issuer[k] = v;
  }
  if (caCert !== undefined) issuer.caCert = caCert;
  return issuer;
}

/**
 * Fulcio's meta-issuer matching: the pattern is regex-quoted, each `*` matches one or more of
 * [-_a-zA-Z0-9] (never '.', '/', ':' or '?'), and the whole URL must match (^...$).
 */
export function metaIssuerRegex(pattern: string): RegExp {
  const quoted = pattern.replace(/[.*+?^${}()|[\]\\/-]/g, (c) => (c === '*' ? '*' : `\\${c}`));
  return new RegExp(`^${quoted.replace(/\*/g, '[-_a-zA-Z0-9]+')}$`);
}

const MAX_ISSUER_URL = 2048;

/** Exact match first, then meta-issuer patterns (the concrete `iss` becomes the issuer URL). */
export function lookupIssuer(config: IssuerConfig, iss: string): OidcIssuer | undefined {
  if (typeof iss !== 'string' || iss.length === 0 || iss.length > MAX_ISSUER_URL) return undefined;
  const exact = Object.hasOwn(config.oidcIssuers, iss) ? config.oidcIssuers[iss] : undefined;
  if (exact) return exact;
  for (const m of config.metaIssuers) {
    if (m.regex.test(iss)) return { ...m.issuer, issuerUrl: iss };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Claims helpers

function claimsError(message: string): never {
  throw new WaxsealError('ERR_IDENTITY_CLAIMS', message);
}

type Claims = Readonly<Record<string, unknown>>;

function requireString(claims: Claims, name: string, what = 'identity token'): string {
  const v = claims[name];
  if (v === undefined || v === null || v === '') claimsError(`${what} lacks the ${name} claim`);
  if (typeof v !== 'string') claimsError(`${what} claim ${name} must be a string`);
  return v;
}

function optionalString(claims: Claims, name: string): string {
  const v = claims[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') claimsError(`identity token claim ${name} must be a string`);
  return v;
}

function subjectOf(claims: Claims): string {
  const sub = claims.sub;
  if (sub === undefined || sub === null) return '';
  if (typeof sub !== 'string') claimsError('identity token claim sub must be a string');
  return sub;
}

function requireSubject(claims: Claims): string {
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

// Characters RFC 3986 allows in a URI; anything else (spaces, backslashes, non-ASCII) is refused
// so every consumer parses the SAN the same way.
const URI_CHARS_RE = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

function requireAbsoluteUri(value: string, what: string): URL {
  if (!URI_CHARS_RE.test(value)) claimsError(`${what} ${JSON.stringify(value)} is not a valid URI`);
  if (!SCHEME_RE.test(value)) claimsError(`${what} ${JSON.stringify(value)} is not an absolute URI`);
  try {
    return new URL(value);
  } catch {
    claimsError(`${what} ${JSON.stringify(value)} is not a valid URI`);
  }
}

/** `email_verified` as Fulcio reads it: true/"true"/"True" or false/"false"/"False"; absent = false. */
function emailVerified(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (v === true || v === 'true' || v === 'True') return true;
  if (v === false || v === 'false' || v === 'False') return false;
  claimsError('identity token claim email_verified is not a boolean');
}

type PathStep = { key: string } | { index: number };

/** A JSONPath subset for IssuerClaim: $.a.b, $['a/b'], $["a"], $.list[0]. */
export function parseJsonPath(path: string, where = 'JSONPath'): PathStep[] {
  if (!path.startsWith('$')) configError(`${where}: ${JSON.stringify(path)} must start with $`);
  const steps: PathStep[] = [];
  let i = 1;
  while (i < path.length) {
    const rest = path.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_-]+)/.exec(rest))) steps.push({ key: m[1]! });
    else if ((m = /^\['((?:[^'\\]|\\.)*)'\]/.exec(rest))) steps.push({ key: m[1]!.replace(/\\(.)/g, '$1') });
    else if ((m = /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest))) steps.push({ key: m[1]!.replace(/\\(.)/g, '$1') });
    else if ((m = /^\[(\d{1,6})\]/.exec(rest))) steps.push({ index: Number(m[1]) });
    else configError(`${where}: unsupported JSONPath syntax at ${JSON.stringify(rest)}`);
    i += m[0].length;
  }
  if (steps.length === 0) configError(`${where}: JSONPath ${JSON.stringify(path)} selects the whole token`);
  return steps;
}

function evalJsonPath(claims: Claims, path: string): unknown {
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

// ---------------------------------------------------------------------------------------------
// Principals

/** Derives the SAN, challenge and extensions for verified `claims` from issuer `issuer`. */
export function buildPrincipal(config: IssuerConfig, issuer: OidcIssuer, claims: Claims): Principal {
  const iss = claims.iss;
  if (typeof iss !== 'string' || iss === '') claimsError('identity token lacks the iss claim');
  switch (issuer.type) {
    case 'email':
      return emailPrincipal(issuer, claims, iss);
    case 'uri':
      return uriPrincipal(issuer, claims, iss);
    case 'username':
      return usernamePrincipal(issuer, claims, iss);
    case 'spiffe':
      return spiffePrincipal(issuer, claims, iss);
    case 'kubernetes':
      return kubernetesPrincipal(claims, iss);
    case 'github-workflow':
      return githubPrincipal(claims, iss);
    case 'gitlab-pipeline':
      return gitlabPrincipal(claims, iss);
    case 'buildkite-job':
      return buildkitePrincipal(claims, iss);
    case 'codefresh-workflow':
      return codefreshPrincipal(claims, iss);
    case 'chainguard-identity':
      return chainguardPrincipal(claims, iss);
    case 'ci-provider': {
      const meta = Object.hasOwn(config.ciIssuerMetadata, issuer.ciProvider!) ? config.ciIssuerMetadata[issuer.ciProvider!] : undefined;
      if (!meta) throw new WaxsealError('ERR_CONFIG', `no ci-issuer-metadata for ci-provider ${issuer.ciProvider}`);
      return ciProviderPrincipal(meta, claims, iss);
    }
  }
}

function emailPrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const email = claims.email;
  if (email === undefined || email === null || email === '') claimsError('identity token lacks the email claim');
  if (typeof email !== 'string') claimsError('identity token claim email must be a string');
  if (!issuer.skipEmailVerification && !emailVerified(claims.email_verified))
    claimsError('email_verified claim was false: the email address is not verified');
  if (!isEmailAddress(email)) claimsError(`email address ${JSON.stringify(email)} is not valid`);
  let certIssuer = iss;
  if (issuer.issuerClaim !== undefined) {
    const v = evalJsonPath(claims, issuer.issuerClaim);
    certIssuer = goFormatValue(v);
    if (certIssuer === '' || v === null || typeof v === 'object')
      claimsError(`identity token claim at ${issuer.issuerClaim} is not a usable issuer`);
  }
  return { san: { type: 'email', value: email }, challenge: email, issuer: certIssuer, extensions: {}, subject: subjectOf(claims) };
}

function uriPrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  if (isEmailAddress(sub)) claimsError('uri subject should not be an email address');
  const u = requireAbsoluteUri(sub, 'subject');
  const domain = new URL(issuer.subjectDomain!);
  if (u.protocol !== domain.protocol)
    claimsError(`subject URI scheme (${u.protocol.slice(0, -1)}) must match expected domain URI scheme (${domain.protocol.slice(0, -1)})`);
  if (u.hostname !== domain.hostname) claimsError(`subject hostname (${u.hostname}) must match expected domain (${domain.hostname})`);
  return { san: { type: 'uri', value: sub }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

function usernamePrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  if (sub.includes('!')) claimsError('username cannot contain ! character');
  if (isEmailAddress(sub)) claimsError('username subject should not be an email address');
  return { san: { type: 'otherName', value: `${sub}!${issuer.subjectDomain}` }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

const SPIFFE_ID_RE = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/;

function spiffePrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const m = SPIFFE_ID_RE.exec(sub);
  if (!m || m[2]!.split('/').some((seg) => seg === '.' || seg === '..')) claimsError(`invalid spiffe ID provided: ${sub}`);
  if (m[1] !== issuer.spiffeTrustDomain)
    claimsError(`spiffe ID trust domain ${m[1]} doesn't match configured trust domain ${issuer.spiffeTrustDomain}`);
  return { san: { type: 'uri', value: sub }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

const DNS_SUBDOMAIN_RE = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

function kubernetesPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const k = claims['kubernetes.io'];
  if (!isPlainObject(k)) claimsError('identity token lacks the kubernetes.io claim');
  const ns = k.namespace;
  const sa = isPlainObject(k.serviceaccount) ? k.serviceaccount.name : undefined;
  if (typeof ns !== 'string' || !DNS_SUBDOMAIN_RE.test(ns)) claimsError('kubernetes.io claim lacks a valid namespace');
  if (typeof sa !== 'string' || !DNS_SUBDOMAIN_RE.test(sa)) claimsError('kubernetes.io claim lacks a valid serviceaccount name');
  return {
    san: { type: 'uri', value: `https://kubernetes.io/namespaces/${ns}/serviceaccounts/${sa}` },
    challenge: sub,
    issuer: iss,
    extensions: {},
    subject: sub,
  };
}

function compact(e: Partial<Record<FulcioExtensionName, string>>): Partial<Record<FulcioExtensionName, string>> {
  const out: Partial<Record<FulcioExtensionName, string>> = {};
  for (const [k, v] of Object.entries(e) as [FulcioExtensionName, string | undefined][]) if (v) out[k] = v;
  return out;
}

const GITHUB_CLAIMS = [
  'job_workflow_ref',
  'sha',
  'event_name',
  'repository',
  'workflow',
  'ref',
  'job_workflow_sha',
  'runner_environment',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'repository_visibility',
  'workflow_ref',
  'workflow_sha',
  'run_id',
  'run_attempt',
] as const;

/** Legacy `github-workflow` type: fixed claim mapping (deprecated upstream in favour of ci-provider). */
function githubPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const c = Object.fromEntries(GITHUB_CLAIMS.map((n) => [n, requireString(claims, n)])) as Record<(typeof GITHUB_CLAIMS)[number], string>;
  const base = 'https://github.com/';
  const signer = joinUrlPath(base, c.job_workflow_ref);
  requireAbsoluteUri(signer, 'subject alternative name');
  return {
    san: { type: 'uri', value: signer },
    challenge: sub,
    issuer: iss,
    subject: sub,
    extensions: compact({
      githubWorkflowTrigger: c.event_name,
      githubWorkflowSha: c.sha,
      githubWorkflowName: c.workflow,
      githubWorkflowRepository: c.repository,
      githubWorkflowRef: c.ref,
      buildSignerURI: signer,
      buildSignerDigest: c.job_workflow_sha,
      runnerEnvironment: c.runner_environment,
      sourceRepositoryURI: joinUrlPath(base, c.repository),
      sourceRepositoryDigest: c.sha,
      sourceRepositoryRef: c.ref,
      sourceRepositoryIdentifier: c.repository_id,
      sourceRepositoryOwnerURI: joinUrlPath(base, c.repository_owner),
      sourceRepositoryOwnerIdentifier: c.repository_owner_id,
      buildConfigURI: joinUrlPath(base, c.workflow_ref),
      buildConfigDigest: c.workflow_sha,
      buildTrigger: c.event_name,
      runInvocationURI: joinUrlPath(base, c.repository, 'actions/runs', c.run_id, 'attempts', c.run_attempt),
      sourceRepositoryVisibilityAtSigning: c.repository_visibility,
    }),
  };
}

/** Legacy `gitlab-pipeline` type (gitlab.com only, as upstream). */
function gitlabPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const get = (n: string) => requireString(claims, n);
  const projectPath = get('project_path');
  const pipelineSource = get('pipeline_source');
  get('pipeline_id');
  const ciConfigRefUri = get('ci_config_ref_uri');
  const jobId = get('job_id');
  const refName = get('ref');
  const refType = get('ref_type');
  const namespacePath = get('namespace_path');
  const namespaceId = get('namespace_id');
  const projectId = get('project_id');
  const sha = get('sha');
  const runnerEnvironment = get('runner_environment');
  const runnerId = claims.runner_id;
  if (typeof runnerId !== 'number' || !Number.isInteger(runnerId) || runnerId === 0)
    claimsError('identity token lacks the runner_id claim');
  let ref: string;
  if (refType === 'branch') ref = `refs/heads/${refName}`;
  else if (refType === 'tag') ref = `refs/tags/${refName}`;
  else claimsError(`unexpected ref_type: ${refType}`);
  const base = 'https://gitlab.com/';
  const configUri = `https://${ciConfigRefUri.replace(/^\/+/, '')}`;
  requireAbsoluteUri(configUri, 'ci_config_ref_uri');
  const ciConfigSha = optionalString(claims, 'ci_config_sha');
  return {
    san: { type: 'uri', value: configUri },
    challenge: sub,
    issuer: iss,
    subject: sub,
    extensions: compact({
      buildConfigURI: configUri,
      buildConfigDigest: ciConfigSha,
      buildSignerURI: configUri,
      buildSignerDigest: ciConfigSha,
      runnerEnvironment,
      sourceRepositoryURI: joinUrlPath(base, projectPath),
      sourceRepositoryDigest: sha,
      sourceRepositoryRef: ref,
      sourceRepositoryIdentifier: projectId,
      sourceRepositoryOwnerURI: joinUrlPath(base, namespacePath),
      sourceRepositoryOwnerIdentifier: namespaceId,
      buildTrigger: pipelineSource,
      runInvocationURI: joinUrlPath(base, projectPath, '/-/jobs/', jobId),
      sourceRepositoryVisibilityAtSigning: optionalString(claims, 'project_visibility'),
    }),
  };
}

function buildkitePrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const org = requireString(claims, 'organization_slug');
  const pipeline = requireString(claims, 'pipeline_slug');
  const san = `https://buildkite.com/${org}/${pipeline}`;
  requireAbsoluteUri(san, 'subject alternative name');
  return { san: { type: 'uri', value: san }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

function codefreshPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const accountId = requireString(claims, 'account_id');
  const pipelineId = requireString(claims, 'pipeline_id');
  const workflowId = requireString(claims, 'workflow_id');
  const platform = optionalString(claims, 'platform_url') || 'https://g.codefresh.io';
  requireAbsoluteUri(platform, 'platform_url');
  const san = joinUrlPath(
    platform,
    optionalString(claims, 'account_name'),
    `${optionalString(claims, 'pipeline_name')}:${accountId}/${pipelineId}`,
  );
  requireAbsoluteUri(san, 'subject alternative name');
  return {
    san: { type: 'uri', value: san },
    challenge: sub,
    issuer: iss,
    subject: sub,
    extensions: compact({
      buildSignerURI: joinUrlPath(platform, 'build', workflowId),
      runnerEnvironment: optionalString(claims, 'runner_environment'),
      sourceRepositoryURI: optionalString(claims, 'scm_repo_url'),
      sourceRepositoryRef: optionalString(claims, 'scm_ref'),
      buildConfigURI: joinUrlPath(platform, 'api', 'pipelines', pipelineId),
      runInvocationURI: joinUrlPath(platform, 'build', workflowId),
    }),
  };
}

function chainguardPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  // As cosign computes the PoP subject: the email when present (and verified), else sub.
  let challenge = sub;
  if (typeof claims.email === 'string' && claims.email !== '') {
    if (!emailVerified(claims.email_verified)) claimsError('email_verified claim was false: the email address is not verified');
    challenge = claims.email;
  }
  const san = joinUrlPath(iss, sub);
  requireAbsoluteUri(san, 'subject alternative name');
  return { san: { type: 'uri', value: san }, challenge, issuer: iss, extensions: {}, subject: sub };
}

/** Applies one template or bare claim name, as Fulcio's applyTemplateOrReplace. */
function applyTemplate(t: CompiledTemplate, data: TemplateData, what: string): string {
  if (!t.isTemplate) {
    const key = t.source;
    if (!Object.hasOwn(data, key)) claimsError(`${what}: value <${key}> not present in either claims or defaults`);
    return data[key]!;
  }
  try {
    return t.execute(data);
  } catch (e) {
    if (e instanceof TemplateExecError) claimsError(`${what}: ${e.message}`);
    throw e;
  }
}

function ciProviderPrincipal(meta: CiProviderMetadata, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  // Claims are flattened to strings and win over the configured defaults.
  const data: Record<string, string> = { ...meta.defaultTemplateValues };
  for (const [k, v] of Object.entries(claims)) data[k] = claimToString(v);
  const san = applyTemplate(meta.subjectAlternativeNameTemplate, data, 'subject alternative name template');
  if (san.trim() === '') claimsError('subject alternative name template produced an empty value');
  requireAbsoluteUri(san, 'subject alternative name');
  const extensions: Partial<Record<FulcioExtensionName, string>> = {};
  for (const name of CI_EXTENSION_NAMES) {
    const t = meta.extensionTemplates[name];
    if (!t) continue;
    const v = applyTemplate(t, data, `extension ${name}`);
    if (v !== '') extensions[name] = v;
  }
  return { san: { type: 'uri', value: san }, challenge: sub, issuer: iss, extensions, subject: sub };
}

// ---------------------------------------------------------------------------------------------
// Built-in GitHub Actions configuration

export const GITHUB_ACTIONS_ISSUER_URL = 'https://token.actions.githubusercontent.com';

/**
 * GitHub Actions through the ci-provider mechanism with the claim mapping public-good Fulcio
 * uses (SAN = https://github.com/<job_workflow_ref>, 1.9-1.23 and the deprecated 1.2-1.6).
 * Operators include it with `parseIssuerConfig(text, { include: [githubActionsIssuerConfig()] })`
 * or `mergeIssuerConfigs(githubActionsIssuerConfig(), theirs)`.
 */
export function githubActionsIssuerConfig(clientId = 'sigstore'): IssuerConfig {
  return issuerConfigFromObject(
    {
      'oidc-issuers': {
        [GITHUB_ACTIONS_ISSUER_URL]: {
          'issuer-url': GITHUB_ACTIONS_ISSUER_URL,
          'client-id': clientId,
          type: 'ci-provider',
          'ci-provider': 'github-workflow',
          description: 'GitHub Actions OIDC tokens',
        },
      },
      // GitHub Enterprise customers with a unique issuer URL (token.actions.githubusercontent.com/<slug>).
      'meta-issuers': {
        [`${GITHUB_ACTIONS_ISSUER_URL}/*`]: { 'client-id': clientId, type: 'ci-provider', 'ci-provider': 'github-workflow' },
      },
      'ci-issuer-metadata': { 'github-workflow': GITHUB_WORKFLOW_METADATA },
    },
    { source: 'built-in GitHub Actions configuration' },
  );
}

const GITHUB_WORKFLOW_METADATA = {
  'default-template-values': { url: 'https://github.com', environment: '' },
  'extension-templates': {
    'github-workflow-trigger': 'event_name',
    'github-workflow-sha': 'sha',
    'github-workflow-name': 'workflow',
    'github-workflow-repository': 'repository',
    'github-workflow-ref': 'ref',
    'build-signer-uri': '{{ .url }}/{{ .job_workflow_ref }}',
    'build-signer-digest': 'job_workflow_sha',
    'runner-environment': 'runner_environment',
    'source-repository-uri': '{{ .url }}/{{ .repository }}',
    'source-repository-digest': 'sha',
    'source-repository-ref': 'ref',
    'source-repository-identifier': 'repository_id',
    'source-repository-owner-uri': '{{ .url }}/{{ .repository_owner }}',
    'source-repository-owner-identifier': 'repository_owner_id',
    'build-config-uri': '{{ .url }}/{{ .workflow_ref }}',
    'build-config-digest': 'workflow_sha',
    'build-trigger': 'event_name',
    'run-invocation-uri': '{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}',
    'source-repository-visibility-at-signing': 'repository_visibility',
    'deployment-environment': 'environment',
  },
  'subject-alternative-name-template': '{{ .url }}/{{ .job_workflow_ref }}',
};

/** The /api/v2/configuration view of the issuers (Fulcio's OIDCIssuer messages, all fields emitted). */
export function configurationView(config: IssuerConfig): { issuers: Record<string, unknown>[] } {
  const view = (i: OidcIssuer, wildcard: boolean) => ({
    ...(wildcard ? { wildcardIssuerUrl: i.wildcardIssuerUrl } : { issuerUrl: i.issuerUrl }),
    audience: i.clientId,
    spiffeTrustDomain: i.spiffeTrustDomain ?? '',
    challengeClaim: i.challengeClaim,
    issuerType: i.type,
    subjectDomain: i.subjectDomain ?? '',
    skipEmailVerification: i.skipEmailVerification,
  });
  return {
    issuers: [...Object.values(config.oidcIssuers).map((i) => view(i, false)), ...config.metaIssuers.map((m) => view(m.issuer, true))],
  };
}
