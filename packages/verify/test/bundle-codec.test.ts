// The bundle / trusted root / signing config codecs on hand-written inputs: media types, version
// rules, protobuf JSON details (snake_case, int64 strings, strict base64, Timestamps), DoS caps,
// and the SigningConfig service selection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorCode } from '../../core/src/errors.ts';
import { TLOG_ENTRY_JSON_FIELDS, throwsWithCode } from '@waxseal/testkit';
import {
  parseBundle,
  serializeBundle,
  bundleVersion,
  parseTrustedRoot,
  serializeTrustedRoot,
  parseSigningConfig,
  parseClientTrustConfig,
  selectServices,
  MAX_TLOG_ENTRIES,
  MAX_TIMESTAMPS,
  BUNDLE_MEDIA_TYPE_V01,
  BUNDLE_MEDIA_TYPE_V02,
  BUNDLE_MEDIA_TYPE_V03,
  BUNDLE_MEDIA_TYPE_V03_LEGACY,
  type SigningConfig,
} from '../../bundle/src/index.ts';

const B64_32 = Buffer.alloc(32, 7).toString('base64');

function entry(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    logIndex: '5',
    logId: { keyId: B64_32 },
    kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
    integratedTime: '1700000000',
    inclusionPromise: { signedEntryTimestamp: 'MEUCIQ==' },
    inclusionProof: {
      logIndex: '1',
      rootHash: B64_32,
      treeSize: '3',
      hashes: [B64_32],
      checkpoint: { envelope: 'x - 1\n3\nAA==\n\n\u2014 x AAAAAAA=\n' },
    },
    canonicalizedBody: 'e30=',
    ...over,
  };
}

function bundle(
  mediaType = BUNDLE_MEDIA_TYPE_V03,
  vm: Record<string, unknown> = {},
  content: Record<string, unknown> = { messageSignature: { signature: 'MEUCIQ==' } },
): Record<string, unknown> {
  return { mediaType, verificationMaterial: { certificate: { rawBytes: 'MIIB' }, tlogEntries: [entry()], ...vm }, ...content };
}

const rejects = (f: () => unknown, code: ErrorCode, field?: RegExp) => throwsWithCode(f, code, field);

test('media types: v0.1, v0.2, both v0.3 spellings; 0.4+ and unknown rejected', () => {
  assert.equal(bundleVersion(BUNDLE_MEDIA_TYPE_V01), '0.1');
  assert.equal(bundleVersion(BUNDLE_MEDIA_TYPE_V02), '0.2');
  assert.equal(bundleVersion(BUNDLE_MEDIA_TYPE_V03), '0.3');
  assert.equal(bundleVersion(BUNDLE_MEDIA_TYPE_V03_LEGACY), '0.3');
  rejects(() => bundleVersion('application/vnd.dev.sigstore.bundle.v0.4+json'), 'ERR_BUNDLE_INVALID', /unsupported bundle version 0.4/);
  rejects(
    () => bundleVersion('application/vnd.dev.sigstore.bundle+json;version=1.0'),
    'ERR_BUNDLE_INVALID',
    /unsupported bundle version 1.0/,
  );
  rejects(() => bundleVersion('application/json'), 'ERR_BUNDLE_INVALID', /unknown bundle media type/);
  rejects(() => parseBundle({ ...bundle(), mediaType: undefined }), 'ERR_BUNDLE_INVALID', /mediaType/);
});

test('version rules: promise for v0.1, proof with checkpoint from v0.2, no chain in v0.3', () => {
  const v01 = parseBundle(
    bundle(BUNDLE_MEDIA_TYPE_V01, {
      certificate: undefined,
      x509CertificateChain: { certificates: [{ rawBytes: 'MIIB' }] },
      tlogEntries: [entry({ inclusionProof: undefined })],
    }),
  );
  assert.equal(v01.verificationMaterial.content.type, 'x509CertificateChain');
  rejects(
    () => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V01, { tlogEntries: [entry({ inclusionPromise: undefined })] })),
    'ERR_BUNDLE_INVALID',
    /inclusionPromise/,
  );
  rejects(
    () => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V02, { tlogEntries: [entry({ inclusionProof: undefined })] })),
    'ERR_BUNDLE_INVALID',
    /inclusionProof/,
  );
  const noCheckpoint = entry();
  delete (noCheckpoint.inclusionProof as Record<string, unknown>).checkpoint;
  rejects(() => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V01, { tlogEntries: [noCheckpoint] })), 'ERR_BUNDLE_INVALID', /checkpoint/);
  rejects(
    () =>
      parseBundle(
        bundle(BUNDLE_MEDIA_TYPE_V03, { certificate: undefined, x509CertificateChain: { certificates: [{ rawBytes: 'MIIB' }] } }),
      ),
    'ERR_BUNDLE_INVALID',
    /x509CertificateChain/,
  );
  rejects(() => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, { publicKey: { hint: 'k' } })), 'ERR_BUNDLE_INVALID', /more than one/);
  // v0.3 without any log entry is well-formed (TSA-only); thresholds decide later.
  assert.equal(parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, { tlogEntries: [] })).verificationMaterial.tlogEntries.length, 0);
});

test('content: exactly one of messageSignature / dsseEnvelope; DSSE needs exactly one signature', () => {
  rejects(() => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, {}, {})), 'ERR_BUNDLE_INVALID', /messageSignature or dsseEnvelope/);
  const env = (sigs: unknown[]) => ({ dsseEnvelope: { payload: 'e30=', payloadType: 'application/vnd.in-toto+json', signatures: sigs } });
  assert.equal(parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, {}, env([{ sig: 'MEUCIQ==', keyid: '' }]))).content.type, 'dsseEnvelope');
  rejects(() => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, {}, env([]))), 'ERR_BUNDLE_INVALID', /exactly one signature/);
  rejects(
    () => parseBundle(bundle(BUNDLE_MEDIA_TYPE_V03, {}, env([{ sig: 'MEUCIQ==' }, { sig: 'MEUCIQ==' }]))),
    'ERR_BUNDLE_INVALID',
    /exactly one signature/,
  );
  rejects(
    () =>
      parseBundle(
        bundle(
          BUNDLE_MEDIA_TYPE_V03,
          {},
          { messageSignature: { signature: 'MEUCIQ==', messageDigest: { algorithm: 'SHA2_256', digest: 'AAAA' } } },
        ),
      ),
    'ERR_BUNDLE_INVALID',
    /digest: is 3 bytes/,
  );
  rejects(
    () =>
      parseBundle(
        bundle(
          BUNDLE_MEDIA_TYPE_V03,
          {},
          { messageSignature: { signature: 'MEUCIQ==', messageDigest: { algorithm: 'SHA3_256', digest: B64_32 } } },
        ),
      ),
    'ERR_BUNDLE_INVALID',
    /SHA3_256/,
  );
});

test('protobuf JSON: snake_case accepted, both spellings rejected, int64 strings, strict base64', () => {
  const snake = {
    media_type: BUNDLE_MEDIA_TYPE_V03,
    verification_material: { certificate: { raw_bytes: 'MIIB' }, tlog_entries: [entry()] },
    message_signature: { signature: 'MEUCIQ==' },
  };
  assert.deepEqual(parseBundle(snake), parseBundle(bundle()));
  rejects(() => parseBundle({ ...bundle(), media_type: BUNDLE_MEDIA_TYPE_V03 }), 'ERR_BUNDLE_INVALID', /both as mediaType and media_type/);
  // int64: strings or numbers, non-negative, below 2^53.
  assert.equal(parseBundle(bundle(undefined, { tlogEntries: [entry({ logIndex: 7 })] })).verificationMaterial.tlogEntries[0]!.logIndex, 7);
  rejects(() => parseBundle(bundle(undefined, { tlogEntries: [entry({ logIndex: '-1' })] })), 'ERR_BUNDLE_INVALID', /logIndex/);
  rejects(
    () => parseBundle(bundle(undefined, { tlogEntries: [entry({ logIndex: '9007199254740993' })] })),
    'ERR_BUNDLE_INVALID',
    /logIndex/,
  );
  rejects(() => parseBundle(bundle(undefined, { tlogEntries: [entry({ logIndex: 1.5 })] })), 'ERR_BUNDLE_INVALID', /logIndex/);
  // base64: standard alphabet, padded, canonical; line breaks skipped like Go's decoder.
  const sig = (s: string) => parseBundle(bundle(undefined, {}, { messageSignature: { signature: s } }));
  rejects(() => sig('MEUCIQ'), 'ERR_BUNDLE_INVALID', /messageSignature.signature/);
  rejects(() => sig('MEUC-Q=='), 'ERR_BUNDLE_INVALID', /messageSignature.signature/);
  rejects(() => sig('MEUCIR=='), 'ERR_BUNDLE_INVALID', /not canonical/);
  assert.deepEqual(sig('MEUC\nIQ==').content, sig('MEUCIQ==').content);
  rejects(() => sig(''), 'ERR_BUNDLE_INVALID', /is required/);
});

test('DoS caps: tlog entries, timestamps, duplicates', () => {
  const many = Array.from({ length: MAX_TLOG_ENTRIES + 1 }, (_, i) => entry({ logIndex: String(i) }));
  rejects(() => parseBundle(bundle(undefined, { tlogEntries: many })), 'ERR_BUNDLE_INVALID', /at most 32/);
  rejects(() => parseBundle(bundle(undefined, { tlogEntries: [entry(), entry()] })), 'ERR_BUNDLE_INVALID', /duplicate entry/);
  const ts = (n: number) => ({
    rfc3161Timestamps: Array.from({ length: n }, (_, i) => ({ signedTimestamp: Buffer.from([48, i]).toString('base64') })),
  });
  assert.equal(
    parseBundle(bundle(undefined, { timestampVerificationData: ts(MAX_TIMESTAMPS) })).verificationMaterial.rfc3161Timestamps.length,
    MAX_TIMESTAMPS,
  );
  rejects(() => parseBundle(bundle(undefined, { timestampVerificationData: ts(MAX_TIMESTAMPS + 1) })), 'ERR_BUNDLE_INVALID', /at most 32/);
  rejects(
    () =>
      parseBundle(
        bundle(undefined, { timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: 'MAA=' }, { signedTimestamp: 'MAA=' }] } }),
      ),
    'ERR_BUNDLE_INVALID',
    /duplicates/,
  );
});

test('serializer emits camelCase protobuf JSON with int64 strings', () => {
  const json = serializeBundle(parseBundle(bundle())) as { verificationMaterial: { tlogEntries: Record<string, unknown>[] } };
  const e = json.verificationMaterial.tlogEntries[0]!;
  assert.equal(e.logIndex, '5');
  assert.equal(e.integratedTime, '1700000000');
  assert.deepEqual(Object.keys(e), TLOG_ENTRY_JSON_FIELDS);
  assert.ok(!JSON.stringify(json).includes('_'));
});

function root(over: Record<string, unknown> = {}, logKey: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: 'https://rekor.example',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: 'MFkw', keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: '2021-01-12T11:53:27Z' }, ...logKey },
        logId: { keyId: B64_32 },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'o', commonName: 'c' },
        uri: 'https://ca',
        certChain: { certificates: [{ rawBytes: 'MIIB' }] },
        validFor: { start: '2026-06-04T12:43:29.186617431Z', end: '2026-06-04T18:43:29.186617501Z' },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
    ...over,
  };
}

test('trusted root: media types, log key rules, nanosecond Timestamps keep the window', () => {
  for (const mt of [
    'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    'application/vnd.dev.sigstore.trustedroot.v0.1+json',
    'application/vnd.dev.sigstore.trustedroot.v0.2+json',
  ]) {
    assert.equal(parseTrustedRoot(root({ mediaType: mt })).mediaType, mt);
  }
  rejects(
    () => parseTrustedRoot(root({ mediaType: 'application/vnd.dev.sigstore.trustedroot.v0.3+json' })),
    'ERR_TRUSTED_ROOT_INVALID',
    /media type/,
  );
  rejects(() => parseTrustedRoot(root({}, { validFor: {} })), 'ERR_TRUSTED_ROOT_INVALID', /tlogs\[0\].publicKey.validFor.start/);
  rejects(() => parseTrustedRoot(root({}, { rawBytes: undefined })), 'ERR_TRUSTED_ROOT_INVALID', /rawBytes/);
  rejects(() => parseTrustedRoot(root({}, { keyDetails: 'NOT_A_KEY' })), 'ERR_TRUSTED_ROOT_INVALID', /keyDetails/);
  const r = parseTrustedRoot(root());
  const vf = r.certificateAuthorities[0]!.validFor;
  assert.equal(vf.start!.toISOString(), '2026-06-04T12:43:29.186Z');
  assert.equal(vf.end!.toISOString(), '2026-06-04T18:43:29.187Z');
  assert.deepEqual(parseTrustedRoot(serializeTrustedRoot(r)), r);
});

function service(url: string, version: number, start: string, operator: string, end?: string) {
  return { url, majorApiVersion: version, validFor: end ? { start, end } : { start }, operator };
}

test('signing config: selection by validity, API version, operator and selector', () => {
  const raw = {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [
      service('https://fulcio.old', 1, '2020-01-01T00:00:00Z', 'op', '2024-01-01T00:00:00Z'),
      service('https://fulcio.new', 1, '2023-06-01T00:00:00Z', 'op'),
    ],
    oidcUrls: [service('https://oauth2', 1, '2022-04-13T20:06:15Z', 'op')],
    rekorTlogUrls: [
      service('https://log2026-1.rekor', 2, '2026-01-01T00:00:00Z', 'op'),
      service('https://log2025-1.rekor', 2, '2025-07-01T00:00:00Z', 'op'),
      service('https://rekor.other', 2, '2025-07-01T00:00:00Z', 'other'),
      service('https://rekor.v1', 1, '2021-01-12T11:53:27Z', 'op'),
    ],
    tsaUrls: [service('https://tsa/api/v1/timestamp', 1, '2025-07-04T00:00:00Z', 'op')],
    rekorTlogConfig: { selector: 'ALL' },
    tsaConfig: { selector: 'ANY' },
  };
  const c = parseSigningConfig(raw);
  // 2026: the newest v2 log per operator; CA: newest valid.
  let s = selectServices(c, new Date('2026-06-01T00:00:00Z'));
  assert.equal(s.ca.url, 'https://fulcio.new');
  assert.deepEqual(
    s.tlogs.map((x) => x.url),
    ['https://log2026-1.rekor', 'https://rekor.other'],
  );
  assert.deepEqual(
    s.tsas.map((x) => x.url),
    ['https://tsa/api/v1/timestamp'],
  );
  assert.equal(s.oidc?.url, 'https://oauth2');
  // Early 2023: no v2 log yet, so v1; the old CA is still the only one valid.
  s = selectServices({ ...c, tsaUrls: [] }, new Date('2023-01-01T00:00:00Z'));
  assert.equal(s.ca.url, 'https://fulcio.old');
  assert.deepEqual(
    s.tlogs.map((x) => x.url),
    ['https://rekor.v1'],
  );
  assert.deepEqual(s.tsas, []);
  // A config that lists TSAs but none valid now is an error, not a silent "no timestamp".
  rejects(() => selectServices(c, new Date('2023-01-01T00:00:00Z')), 'ERR_SIGNING_CONFIG_INVALID', /timestamp authority/);
  // A client that only speaks Rekor v1.
  s = selectServices(c, new Date('2026-06-01T00:00:00Z'), { supported: { ca: [1], oidc: [1], tlog: [1], tsa: [1] } });
  assert.deepEqual(
    s.tlogs.map((x) => x.url),
    ['https://rekor.v1'],
  );
  // EXACT needs enough distinct operators.
  const exact = (count: number): SigningConfig => ({ ...c, rekorTlogConfig: { selector: 'EXACT', count } });
  assert.equal(selectServices(exact(2), new Date('2026-06-01T00:00:00Z')).tlogs.length, 2);
  rejects(() => selectServices(exact(3), new Date('2026-06-01T00:00:00Z')), 'ERR_SIGNING_CONFIG_INVALID', /needs 3/);
  rejects(() => selectServices(c, new Date('2019-01-01T00:00:00Z')), 'ERR_SIGNING_CONFIG_INVALID', /no CA service/);
  rejects(
    () => parseSigningConfig({ ...raw, tsaConfig: { selector: 'SERVICE_SELECTOR_UNDEFINED' } }),
    'ERR_SIGNING_CONFIG_INVALID',
    /tsaConfig.selector/,
  );
  rejects(() => parseSigningConfig({ ...raw, tsaConfig: { selector: 'EXACT' } }), 'ERR_SIGNING_CONFIG_INVALID', /tsaConfig.count/);
  rejects(
    () => parseSigningConfig({ ...raw, mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.1+json' }),
    'ERR_SIGNING_CONFIG_INVALID',
    /media type/,
  );
  const ctc = parseClientTrustConfig({
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot: root(),
    signingConfig: raw,
  });
  assert.equal(ctc.signingConfig.caUrls.length, 2);
  rejects(
    () => parseClientTrustConfig({ mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json', trustedRoot: root() }),
    'ERR_SIGNING_CONFIG_INVALID',
    /signingConfig/,
  );
});
