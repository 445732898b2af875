// OIDC issuer configuration in Fulcio's format (JSON or YAML): loading, validation, merging,
// issuer lookup (exact URLs, then meta-issuer patterns) and the /api/v2/configuration view.
// Everything fails closed: a configuration Fulcio would accept but that cannot issue safely is
// refused at load with ERR_CONFIG.
import { parse as parseYaml } from 'yaml';
import { WaxsealError, type FulcioExtensionName } from '@waxseal/core';
import { compileTemplate, claimToString, type CompiledTemplate } from '../gotemplate.ts';
import { isPlainObject, parseJsonPath, SCHEME_RE } from './claims.ts';

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
