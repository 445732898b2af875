// The SigningConfig / ClientTrustConfig codecs and the service selection on their own: exact
// round trips, required fields named when missing, malformed input refused by code, and the
// protobuf-specs selection rules (validity, API version, operator, selector).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRequiredFields, mutationRefuser, throwsWithCode, withoutField } from '@waxseal/testkit';
import {
  parseSigningConfig,
  parseSigningConfigJson,
  serializeSigningConfig,
  parseClientTrustConfig,
  parseClientTrustConfigJson,
  serializeClientTrustConfig,
  selectService,
  selectServices,
  selectServicesByConfig,
  CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01,
  SIGNING_CONFIG_MEDIA_TYPE_V02,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  type Service,
  type SigningConfig,
} from './index.ts';
import type { Json } from '../test/helpers.ts';

const service = (url: string, majorApiVersion: number, start: string, operator: string, end?: string): Json => ({
  url,
  majorApiVersion,
  validFor: end ? { start, end } : { start },
  operator,
});

function configJson(): Json {
  return {
    mediaType: SIGNING_CONFIG_MEDIA_TYPE_V02,
    caUrls: [service('https://ca.example.com', 1, '2024-01-01T00:00:00Z', 'example.com')],
    oidcUrls: [service('https://oidc.example.com', 1, '2024-01-01T00:00:00Z', 'example.com')],
    rekorTlogUrls: [
      service('https://log.example.com', 2, '2024-06-01T00:00:00Z', 'example.com'),
      service('https://log.example.com', 1, '2024-01-01T00:00:00.5Z', 'example.com', '2030-01-01T00:00:00Z'),
    ],
    tsaUrls: [service('https://tsa.example.com/api/v1/timestamp', 1, '2024-01-01T00:00:00Z', 'example.com')],
    rekorTlogConfig: { selector: 'EXACT', count: 1 },
    tsaConfig: { selector: 'ANY' },
  };
}

const trustedRootJson = {
  mediaType: TRUSTED_ROOT_MEDIA_TYPE_V01,
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

test('canonical JSON: parse then serialize gives the same text', () => {
  const doc = configJson();
  doc.rekorTlogUrls[1].validFor.start = '2024-01-01T00:00:00.500Z';
  const text = JSON.stringify(doc);
  assert.equal(JSON.stringify(serializeSigningConfig(parseSigningConfigJson(text))), text);
  const ctc = JSON.stringify({ mediaType: CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01, trustedRoot: trustedRootJson, signingConfig: doc });
  assert.equal(JSON.stringify(serializeClientTrustConfig(parseClientTrustConfigJson(ctc))), ctc);
});

test('typed values: serialize then parse gives the same value', () => {
  const c: SigningConfig = {
    mediaType: SIGNING_CONFIG_MEDIA_TYPE_V02,
    caUrls: [{ url: 'https://ca.example.com', majorApiVersion: 1, validFor: { start: new Date(1_700_000_000_000) }, operator: 'a' }],
    oidcUrls: [],
    rekorTlogUrls: [],
    tsaUrls: [{ url: 'https://tsa.example.com/ts', majorApiVersion: 1, validFor: {}, operator: '' }],
    rekorTlogConfig: { selector: 'ALL' },
    tsaConfig: { selector: 'EXACT', count: 2 },
  };
  assert.deepEqual(parseSigningConfig(JSON.parse(JSON.stringify(serializeSigningConfig(c)))), c);
});

test('every required field: missing, it is named in the error', () => {
  assertRequiredFields(parseSigningConfig, 'ERR_SIGNING_CONFIG_INVALID', configJson(), [
    ['mediaType'],
    ['caUrls[0].url'],
    ['tsaUrls[0].url'],
    ['rekorTlogConfig'],
    ['rekorTlogConfig.selector'],
    ['rekorTlogConfig.count'],
    ['tsaConfig'],
  ]);
  const ctc = { mediaType: CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01, trustedRoot: trustedRootJson, signingConfig: configJson() };
  throwsWithCode(() => parseClientTrustConfig(withoutField(ctc, 'trustedRoot')), 'ERR_TRUSTED_ROOT_INVALID', /^trustedRoot: is required/);
  throwsWithCode(
    () => parseClientTrustConfig(withoutField(ctc, 'signingConfig')),
    'ERR_SIGNING_CONFIG_INVALID',
    /^signingConfig: is required/,
  );
  throwsWithCode(
    () => parseClientTrustConfig(withoutField(ctc, 'mediaType')),
    'ERR_TRUSTED_ROOT_INVALID',
    /client trust config media type/,
  );
  // Errors inside a member name the full path.
  const e = throwsWithCode(
    () => parseClientTrustConfig(withoutField(ctc, 'signingConfig.caUrls[0].url')),
    'ERR_SIGNING_CONFIG_INVALID',
    /^signingConfig\.caUrls\[0\]\.url: is required/,
  );
  assert.equal(e.detail?.field, 'signingConfig.caUrls[0].url');
  throwsWithCode(
    () => parseClientTrustConfig({ ...ctc, trustedRoot: { ...trustedRootJson, tlogs: 1 } }),
    'ERR_TRUSTED_ROOT_INVALID',
    /^trustedRoot\.tlogs: must be an array/,
  );
});

test('malformed input is refused with ERR_SIGNING_CONFIG_INVALID naming the field', () => {
  const bad = mutationRefuser(parseSigningConfig, 'ERR_SIGNING_CONFIG_INVALID', configJson);
  throwsWithCode(() => parseSigningConfigJson('['), 'ERR_SIGNING_CONFIG_INVALID', /not valid JSON/);
  bad((d) => (d.mediaType = 'application/vnd.dev.sigstore.signingconfig.v0.1+json'), /unsupported signing config media type/);
  bad((d) => (d.caUrls[0].url = 'not a url'), /caUrls\[0\]\.url: is not a valid URL/);
  bad((d) => (d.caUrls[0].majorApiVersion = 2 ** 32), /majorApiVersion: is out of range/);
  bad((d) => (d.tsaConfig.selector = 'SERVICE_SELECTOR_UNDEFINED'), /tsaConfig\.selector: must be ALL, ANY or EXACT/);
  bad((d) => (d.tsaConfig.selector = 'SOME'), /tsaConfig\.selector: unknown value "SOME"/);
  bad((d) => (d.rekorTlogConfig.count = 0), /rekorTlogConfig\.count: must be at least 1 with selector EXACT/);
  bad((d) => (d.oidcUrls[0].validFor.end = 'tomorrow'), /oidcUrls\[0\]\.validFor\.end: is not an RFC 3339 timestamp/);
});

const svc = (url: string, majorApiVersion: number, start: string, operator = 'a', end?: string): Service => ({
  url,
  majorApiVersion,
  validFor: { start: new Date(start), ...(end ? { end: new Date(end) } : {}) },
  operator,
});

test('selectService: valid now, highest supported version, newest start', () => {
  const now = new Date('2025-01-01T00:00:00Z');
  const list = [
    svc('https://v1-old', 1, '2023-01-01T00:00:00Z'),
    svc('https://v1-new', 1, '2024-01-01T00:00:00Z'),
    svc('https://v2-future', 2, '2026-01-01T00:00:00Z'),
    svc('https://v2-expired', 2, '2023-01-01T00:00:00Z', 'a', '2024-01-01T00:00:00Z'),
  ];
  assert.equal(selectService(list, [1, 2], now).url, 'https://v1-new');
  assert.equal(selectService([...list, svc('https://v2', 2, '2024-06-01T00:00:00Z')], [1, 2], now).url, 'https://v2');
  throwsWithCode(() => selectService(list, [3], now, 'CA'), 'ERR_SIGNING_CONFIG_INVALID', /no CA service for API versions 3/);
});

test('selectServicesByConfig: newest per operator, then ALL / ANY / EXACT, never mixing versions', () => {
  const now = new Date('2025-01-01T00:00:00Z');
  const list = [
    svc('https://a-old', 1, '2023-01-01T00:00:00Z', 'a'),
    svc('https://a-new', 1, '2024-01-01T00:00:00Z', 'a'),
    svc('https://b', 1, '2023-06-01T00:00:00Z', 'b'),
    svc('https://c-v2', 2, '2024-01-01T00:00:00Z', 'c'),
  ];
  const urls = (s: Service[]) => s.map((x) => x.url);
  assert.deepEqual(urls(selectServicesByConfig(list, { selector: 'ALL' }, [1], now)), ['https://a-new', 'https://b']);
  assert.deepEqual(urls(selectServicesByConfig(list, { selector: 'ALL' }, [1, 2], now)), ['https://c-v2']);
  assert.deepEqual(urls(selectServicesByConfig(list, { selector: 'ANY' }, [1], now, () => 1)), ['https://b']);
  assert.deepEqual(urls(selectServicesByConfig(list, { selector: 'ANY' }, [1], now, () => 7)), ['https://a-new']);
  assert.deepEqual(urls(selectServicesByConfig(list, { selector: 'EXACT', count: 2 }, [1], now)), ['https://a-new', 'https://b']);
  throwsWithCode(
    () => selectServicesByConfig(list, { selector: 'EXACT', count: 3 }, [1], now, undefined, 'log'),
    'ERR_SIGNING_CONFIG_INVALID',
    /needs 3 log services of distinct operators, only 2/,
  );
});

test('selectServices: a CA is required; OIDC, logs and TSAs only when listed', () => {
  const c = parseSigningConfig(configJson());
  const now = new Date('2025-01-01T00:00:00Z');
  const s = selectServices(c, now);
  assert.equal(s.ca.url, 'https://ca.example.com');
  assert.equal(s.oidc?.url, 'https://oidc.example.com');
  assert.deepEqual(
    s.tlogs.map((t) => [t.url, t.majorApiVersion]),
    [['https://log.example.com', 2]],
  );
  assert.deepEqual(
    s.tsas.map((t) => t.url),
    ['https://tsa.example.com/api/v1/timestamp'],
  );
  // Before the v2 log starts, the v1 endpoint is the one valid.
  assert.equal(selectServices(c, new Date('2024-03-01T00:00:00Z')).tlogs[0]!.majorApiVersion, 1);
  const bare = selectServices({ ...c, oidcUrls: [], rekorTlogUrls: [], tsaUrls: [] }, now);
  assert.equal(bare.oidc, undefined);
  assert.deepEqual([bare.tlogs, bare.tsas], [[], []]);
  throwsWithCode(() => selectServices({ ...c, caUrls: [] }, now), 'ERR_SIGNING_CONFIG_INVALID', /no CA service/);
  throwsWithCode(() => selectServices(c, new Date('2023-01-01T00:00:00Z')), 'ERR_SIGNING_CONFIG_INVALID', /valid at 2023/);
});
