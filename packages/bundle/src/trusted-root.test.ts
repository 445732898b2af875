// The TrustedRoot codec on its own: canonical JSON survives parse -> serialize exactly, typed
// values survive serialize -> parse, required fields are named when missing, and malformed
// input is refused with ERR_TRUSTED_ROOT_INVALID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRequiredFields, mutationRefuser, throwsWithCode } from '@waxseal/testkit';
import {
  parseTrustedRoot,
  parseTrustedRootJson,
  serializeTrustedRoot,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  TRUSTED_ROOT_MEDIA_TYPE_V01_NEW,
  TRUSTED_ROOT_MEDIA_TYPE_V02,
  type TrustedRoot,
} from './index.ts';
import { b64, bytes, type Json } from '../test/helpers.ts';

function logJson(fill: number): Json {
  return {
    baseUrl: 'https://log.example.com',
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: b64(44, fill), keyDetails: 'PKIX_ED25519', validFor: { start: '2024-01-01T00:00:00Z' } },
    logId: { keyId: b64(32, fill) },
    checkpointKeyId: { keyId: b64(32, fill + 1) },
    operator: 'example.com',
  };
}

function authorityJson(fill: number): Json {
  return {
    subject: { organization: 'Example', commonName: 'Example CA' },
    uri: 'https://ca.example.com',
    certChain: { certificates: [{ rawBytes: b64(400, fill) }, { rawBytes: b64(350, fill + 1) }] },
    validFor: { start: '2024-01-01T00:00:00Z', end: '2025-06-30T12:00:00.250Z' },
    operator: 'example.com',
  };
}

function rootJson(): Json {
  return {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE_V02,
    tlogs: [logJson(1)],
    certificateAuthorities: [authorityJson(3)],
    ctlogs: [(({ checkpointKeyId: _, operator: __, ...l }) => l)(logJson(5))],
    timestampAuthorities: [{ ...authorityJson(7), subject: {}, validFor: { start: '2024-02-01T00:00:00Z' } }],
  };
}

test('canonical JSON: parse then serialize gives the same text, for every media type', () => {
  for (const mediaType of [TRUSTED_ROOT_MEDIA_TYPE_V01, TRUSTED_ROOT_MEDIA_TYPE_V01_NEW, TRUSTED_ROOT_MEDIA_TYPE_V02]) {
    const text = JSON.stringify({ ...rootJson(), mediaType });
    assert.equal(JSON.stringify(serializeTrustedRoot(parseTrustedRootJson(text))), text, mediaType);
  }
});

test('typed values: serialize then parse gives the same value', () => {
  const r: TrustedRoot = {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE_V01,
    tlogs: [
      {
        baseUrl: 'https://log.example.com',
        hashAlgorithm: 'sha256',
        publicKey: { rawBytes: bytes(91, 1), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: new Date(1_700_000_000_123) } },
        logId: bytes(32, 2),
      },
    ],
    certificateAuthorities: [
      {
        subject: { commonName: 'CA' },
        uri: '',
        certChain: [bytes(300, 3)],
        validFor: { start: new Date(1_600_000_000_000), end: new Date(1_800_000_000_000) },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  };
  assert.deepEqual(parseTrustedRoot(JSON.parse(JSON.stringify(serializeTrustedRoot(r)))), r);
});

test('Timestamps: RFC 3339 offsets and nanoseconds; the window never shrinks by rounding', () => {
  const doc = rootJson();
  doc.certificateAuthorities[0].validFor = { start: '2024-01-01T01:00:00.0000001+01:00', end: '2024-01-02T00:00:00.000000001Z' };
  const ca = parseTrustedRoot(doc).certificateAuthorities[0]!;
  assert.equal(ca.validFor.start!.toISOString(), '2024-01-01T00:00:00.000Z');
  assert.equal(ca.validFor.end!.toISOString(), '2024-01-02T00:00:00.001Z');
});

test('every required field: missing, it is named in the error', () => {
  assertRequiredFields(parseTrustedRoot, 'ERR_TRUSTED_ROOT_INVALID', rootJson(), [
    ['mediaType'],
    ['tlogs[0].baseUrl'],
    ['tlogs[0].hashAlgorithm'],
    ['tlogs[0].publicKey'],
    ['tlogs[0].publicKey.rawBytes'],
    ['tlogs[0].publicKey.validFor.start'],
    ['tlogs[0].publicKey.validFor', 'tlogs[0].publicKey.validFor.start'],
    ['tlogs[0].logId'],
    ['tlogs[0].logId.keyId'],
    ['tlogs[0].checkpointKeyId.keyId'],
    ['ctlogs[0].publicKey.rawBytes'],
    ['certificateAuthorities[0].certChain'],
    ['certificateAuthorities[0].certChain.certificates'],
    ['certificateAuthorities[0].certChain.certificates[0].rawBytes'],
    ['timestampAuthorities[0].certChain'],
  ]);
});

test('malformed input is refused with ERR_TRUSTED_ROOT_INVALID naming the field', () => {
  const bad = mutationRefuser(parseTrustedRoot, 'ERR_TRUSTED_ROOT_INVALID', rootJson);
  throwsWithCode(() => parseTrustedRootJson('not json'), 'ERR_TRUSTED_ROOT_INVALID', /not valid JSON/);
  bad((d) => (d.mediaType = 'application/vnd.dev.sigstore.trustedroot.v0.9+json'), /unsupported trusted root media type/);
  bad((d) => (d.tlogs[0].hashAlgorithm = 'SHA2_384'), /tlogs\[0\]\.hashAlgorithm: unsupported log hash algorithm SHA2_384/);
  bad((d) => (d.tlogs[0].publicKey.keyDetails = 'RSA_FANCY'), /keyDetails: unknown value "RSA_FANCY"/);
  bad((d) => (d.tlogs[0].publicKey.validFor.start = '2024-02-30T00:00:00Z'), /start: is not a valid calendar date/);
  bad((d) => (d.tlogs[0].publicKey.validFor.start = '2024-01-01 00:00:00'), /start: is not an RFC 3339 timestamp/);
  bad((d) => (d.tlogs = {}), /tlogs: must be an array/);
  bad((d) => (d.certificateAuthorities[0].certChain.certificates = new Array(11).fill({ rawBytes: 'AAAA' })), /at most 10/);
  bad((d) => (d.timestampAuthorities[0].uri = 5), /timestampAuthorities\[0\]\.uri: must be a string/);
});
