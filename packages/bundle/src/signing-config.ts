// SigningConfig v0.2 and ClientTrustConfig v0.1 JSON codecs, and the service-selection
// algorithm of protobuf-specs / sigstore-go (SelectService, SelectServices).
import { WaxsealError } from '@waxseal/core';
import {
  type JsonObject,
  type Where,
  at,
  invalid,
  asObject,
  optObject,
  reqObject,
  optString,
  reqString,
  optArray,
  optInt32,
  optEnum,
  parseJsonText,
} from './json.ts';
import { MAX_TRUST_LIST_ENTRIES, MAX_JSON_TEXT_BYTES } from './limits.ts';
import { parseTimeRange, serializeTimeRange, parseTrustedRoot, serializeTrustedRoot } from './trusted-root.ts';
import {
  type SigningConfig,
  type Service,
  type ServiceConfiguration,
  type ServiceSelector,
  type ClientTrustConfig,
  SIGNING_CONFIG_MEDIA_TYPE_V02,
  CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01,
} from './types.ts';

const ROOT: Where = { code: 'ERR_SIGNING_CONFIG_INVALID', path: '' };
const SELECTORS = ['SERVICE_SELECTOR_UNDEFINED', 'ALL', 'ANY', 'EXACT'] as const;

function parseService(v: unknown, w: Where): Service {
  const o = asObject(v, w);
  const url = reqString(o, 'url', w);
  if (!URL.canParse(url)) invalid(at(w, 'url'), 'is not a valid URL');
  return {
    url,
    majorApiVersion: optInt32(o, 'majorApiVersion', w) ?? 0,
    validFor: parseTimeRange(optObject(o, 'validFor', w), at(w, 'validFor')),
    operator: optString(o, 'operator', w) ?? '',
  };
}

function parseServiceConfiguration(o: JsonObject, w: Where): ServiceConfiguration {
  const selector = optEnum(o, 'selector', w, SELECTORS, { 0: 'SERVICE_SELECTOR_UNDEFINED', 1: 'ALL', 2: 'ANY', 3: 'EXACT' });
  // Clients must refuse an undefined selector (protobuf-specs).
  if (selector === undefined || selector === 'SERVICE_SELECTOR_UNDEFINED') invalid(at(w, 'selector'), 'must be ALL, ANY or EXACT');
  const count = optInt32(o, 'count', w);
  if (selector === 'EXACT' && (count === undefined || count < 1)) invalid(at(w, 'count'), 'must be at least 1 with selector EXACT');
  return count === undefined ? { selector } : { selector, count };
}

export function parseSigningConfig(value: unknown, where: Where = ROOT): SigningConfig {
  const o = asObject(value, where);
  const mediaType = optString(o, 'mediaType', where);
  if (mediaType !== SIGNING_CONFIG_MEDIA_TYPE_V02) {
    invalid(
      at(where, 'mediaType'),
      `unsupported signing config media type ${JSON.stringify((mediaType ?? '').slice(0, 100))} (expected ${SIGNING_CONFIG_MEDIA_TYPE_V02})`,
    );
  }
  const list = (name: string): Service[] =>
    optArray(o, name, where, MAX_TRUST_LIST_ENTRIES).map((v, i) => parseService(v, at(at(where, name), i)));
  return {
    mediaType,
    caUrls: list('caUrls'),
    oidcUrls: list('oidcUrls'),
    rekorTlogUrls: list('rekorTlogUrls'),
    tsaUrls: list('tsaUrls'),
    rekorTlogConfig: parseServiceConfiguration(reqObject(o, 'rekorTlogConfig', where), at(where, 'rekorTlogConfig')),
    tsaConfig: parseServiceConfiguration(reqObject(o, 'tsaConfig', where), at(where, 'tsaConfig')),
  };
}

export function parseSigningConfigJson(input: string | Uint8Array): SigningConfig {
  return parseSigningConfig(parseJsonText(input, 'ERR_SIGNING_CONFIG_INVALID', 'signing config', MAX_JSON_TEXT_BYTES));
}

function serializeService(s: Service): JsonObject {
  const out: JsonObject = { url: s.url, majorApiVersion: s.majorApiVersion, validFor: serializeTimeRange(s.validFor) };
  if (s.operator) out.operator = s.operator;
  return out;
}

function serializeServiceConfiguration(c: ServiceConfiguration): JsonObject {
  return c.count === undefined ? { selector: c.selector } : { selector: c.selector, count: c.count };
}

export function serializeSigningConfig(c: SigningConfig): JsonObject {
  return {
    mediaType: c.mediaType,
    caUrls: c.caUrls.map(serializeService),
    oidcUrls: c.oidcUrls.map(serializeService),
    rekorTlogUrls: c.rekorTlogUrls.map(serializeService),
    tsaUrls: c.tsaUrls.map(serializeService),
    rekorTlogConfig: serializeServiceConfiguration(c.rekorTlogConfig),
    tsaConfig: serializeServiceConfiguration(c.tsaConfig),
  };
}

// ---------------------------------------------------------------- ClientTrustConfig

export function parseClientTrustConfig(value: unknown): ClientTrustConfig {
  const w: Where = { code: 'ERR_TRUSTED_ROOT_INVALID', path: '' };
  const o = asObject(value, w);
  const mediaType = optString(o, 'mediaType', w);
  if (mediaType !== CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01) {
    invalid(at(w, 'mediaType'), `unsupported client trust config media type ${JSON.stringify((mediaType ?? '').slice(0, 100))}`);
  }
  // Both members are REQUIRED (protobuf-specs).
  const tr = reqObject(o, 'trustedRoot', w);
  const sc = optObject(o, 'signingConfig', { code: 'ERR_SIGNING_CONFIG_INVALID', path: '' });
  if (sc === undefined) invalid({ code: 'ERR_SIGNING_CONFIG_INVALID', path: 'signingConfig' }, 'is required');
  let trustedRoot;
  try {
    trustedRoot = parseTrustedRoot(tr);
  } catch (e) {
    if (e instanceof WaxsealError)
      throw new WaxsealError(e.code, `trustedRoot.${e.message}`, {
        cause: e,
        detail: { field: `trustedRoot.${String(e.detail?.field ?? '')}` },
      });
    throw e;
  }
  return { mediaType, trustedRoot, signingConfig: parseSigningConfig(sc, { code: 'ERR_SIGNING_CONFIG_INVALID', path: 'signingConfig' }) };
}

export function parseClientTrustConfigJson(input: string | Uint8Array): ClientTrustConfig {
  return parseClientTrustConfig(parseJsonText(input, 'ERR_TRUSTED_ROOT_INVALID', 'client trust config', MAX_JSON_TEXT_BYTES));
}

export function serializeClientTrustConfig(c: ClientTrustConfig): JsonObject {
  return {
    mediaType: c.mediaType,
    trustedRoot: serializeTrustedRoot(c.trustedRoot),
    signingConfig: serializeSigningConfig(c.signingConfig),
  };
}

// ---------------------------------------------------------------- service selection

export interface SupportedApiVersions {
  ca: readonly number[];
  oidc: readonly number[];
  tlog: readonly number[];
  tsa: readonly number[];
}

/** What this project's signing client speaks: Fulcio API 1, OIDC 1, Rekor v1 and v2, TSA 1. */
export const DEFAULT_SUPPORTED_API_VERSIONS: SupportedApiVersions = { ca: [1], oidc: [1], tlog: [2, 1], tsa: [1] };

export interface SelectedServices {
  ca: Service;
  /** Absent when the config lists no OIDC provider valid now. */
  oidc?: Service;
  /** Transparency logs to write to (all the same API version). */
  tlogs: Service[];
  /** Timestamp authorities to ask (may be empty when the config lists none). */
  tsas: Service[];
}

function validAt(s: Service, now: Date): boolean {
  const t = now.getTime();
  return (
    (s.validFor.start === undefined || s.validFor.start.getTime() <= t) && (s.validFor.end === undefined || t <= s.validFor.end.getTime())
  );
}

/** Services of one API version valid now, newest validFor.start first. */
function candidates(services: readonly Service[], version: number, now: Date): Service[] {
  return services
    .filter((s) => s.majorApiVersion === version && validAt(s, now))
    .sort((a, b) => (b.validFor.start?.getTime() ?? -Infinity) - (a.validFor.start?.getTime() ?? -Infinity));
}

function noService(what: string, versions: readonly number[], now: Date): never {
  throw new WaxsealError(
    'ERR_SIGNING_CONFIG_INVALID',
    `signing config lists no ${what} service for API versions ${versions.join(', ')} valid at ${now.toISOString()}`,
  );
}

/** SelectService: the newest service at the highest supported version valid now. */
export function selectService(services: readonly Service[], versions: readonly number[], now: Date, what = 'matching'): Service {
  for (const v of [...versions].sort((a, b) => b - a)) {
    const c = candidates(services, v, now);
    if (c.length > 0) return c[0]!;
  }
  noService(what, versions, now);
}

/**
 * SelectServices: at the highest supported version with any match, the newest service of each
 * operator, then the selector (ALL: every one; ANY: one, chosen by `pick`; EXACT: the first
 * `count`, failing when fewer exist). Versions are never mixed.
 */
export function selectServicesByConfig(
  services: readonly Service[],
  config: ServiceConfiguration,
  versions: readonly number[],
  now: Date,
  pick: (n: number) => number = () => 0,
  what = 'matching',
): Service[] {
  for (const v of [...versions].sort((a, b) => b - a)) {
    const seen = new Set<string>();
    const perOperator = candidates(services, v, now).filter((s) => {
      if (seen.has(s.operator)) return false;
      seen.add(s.operator);
      return true;
    });
    if (perOperator.length === 0) continue;
    const selector: ServiceSelector = config.selector;
    if (selector === 'ALL') return perOperator;
    if (selector === 'ANY') {
      const i = pick(perOperator.length);
      return [perOperator[Number.isInteger(i) && i >= 0 && i < perOperator.length ? i : 0]!];
    }
    const count = config.count ?? 1;
    if (perOperator.length < count) {
      throw new WaxsealError(
        'ERR_SIGNING_CONFIG_INVALID',
        `signing config needs ${count} ${what} services of distinct operators, only ${perOperator.length} are valid now`,
      );
    }
    return perOperator.slice(0, count);
  }
  noService(what, versions, now);
}

/**
 * Picks the services a signing client uses at `now` (protobuf-specs SigningConfig rules). A CA
 * is required; OIDC and TSA are optional (an empty list gives none); tlogs are required when the
 * config lists any.
 */
export function selectServices(
  config: SigningConfig,
  now: Date,
  options: { supported?: SupportedApiVersions; pick?: (n: number) => number } = {},
): SelectedServices {
  const supported = options.supported ?? DEFAULT_SUPPORTED_API_VERSIONS;
  const out: SelectedServices = {
    ca: selectService(config.caUrls, supported.ca, now, 'CA'),
    tlogs:
      config.rekorTlogUrls.length === 0
        ? []
        : selectServicesByConfig(config.rekorTlogUrls, config.rekorTlogConfig, supported.tlog, now, options.pick, 'transparency log'),
    tsas:
      config.tsaUrls.length === 0
        ? []
        : selectServicesByConfig(config.tsaUrls, config.tsaConfig, supported.tsa, now, options.pick, 'timestamp authority'),
  };
  if (config.oidcUrls.length > 0) {
    try {
      out.oidc = selectService(config.oidcUrls, supported.oidc, now, 'OIDC');
    } catch {
      // no OIDC provider valid now: the caller must bring its own token
    }
  }
  return out;
}
