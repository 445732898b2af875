// The bundle codec on its own: canonical protobuf JSON survives parse -> serialize byte for byte,
// typed values survive serialize -> parse, every required field is named when missing, and
// malformed input is refused with ERR_BUNDLE_INVALID naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRequiredFields, mutationRefuser, throwsWithCode } from '@waxseal/testkit';
import {
  parseBundle,
  parseBundleJson,
  serializeBundle,
  serializeBundleJson,
  parseTransparencyLogEntry,
  serializeTransparencyLogEntry,
  bundleLeafCertificate,
  bundleSignatureBytes,
  BUNDLE_MEDIA_TYPE_V01,
  BUNDLE_MEDIA_TYPE_V02,
  BUNDLE_MEDIA_TYPE_V03,
  BUNDLE_MEDIA_TYPE_V03_LEGACY,
  type Bundle,
} from './index.ts';
import { b64, bytes, type Json } from '../test/helpers.ts';

const CHECKPOINT = 'log.example - 1\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 log.example AAAAAAA=\n';

/** A Rekor v1 entry with promise and proof, keys in the serializer's order. */
function entryJson(): Json {
  return {
    logIndex: '5',
    logId: { keyId: b64(32, 1) },
    kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
    integratedTime: '1700000000',
    inclusionPromise: { signedEntryTimestamp: b64(71, 2) },
    inclusionProof: {
      logIndex: '1',
      rootHash: b64(32, 3),
      treeSize: '3',
      hashes: [b64(32, 4), b64(32, 5)],
      checkpoint: { envelope: CHECKPOINT },
    },
    canonicalizedBody: b64(100, 6),
  };
}

function messageBundleJson(): Json {
  return {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: {
      certificate: { rawBytes: b64(400, 7) },
      tlogEntries: [entryJson()],
      timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: b64(900, 8) }] },
    },
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: b64(32, 9) }, signature: b64(71, 10) },
  };
}

function dsseBundleJson(): Json {
  const { messageSignature: _, ...rest } = messageBundleJson();
  return {
    ...rest,
    dsseEnvelope: { payload: b64(300, 11), payloadType: 'application/vnd.in-toto+json', signatures: [{ sig: b64(71, 12) }] },
  };
}

test('canonical protobuf JSON: parse then serialize gives the same text', () => {
  const rekorV2 = messageBundleJson();
  const { integratedTime: _, inclusionPromise: __, ...v2entry } = entryJson();
  rekorV2.verificationMaterial.tlogEntries = [{ ...v2entry, kindVersion: { kind: 'hashedrekord', version: '0.0.2' } }];
  const withKeyid = dsseBundleJson();
  withKeyid.dsseEnvelope.signatures[0].keyid = 'key-1';
  const v01 = {
    mediaType: BUNDLE_MEDIA_TYPE_V01,
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: b64(400, 7) }, { rawBytes: b64(300, 13) }] },
      tlogEntries: [(({ inclusionProof: _p, ...e }) => e)(entryJson())],
      timestampVerificationData: {},
    },
    messageSignature: { signature: b64(71, 10) },
  };
  const v02 = {
    mediaType: BUNDLE_MEDIA_TYPE_V02,
    verificationMaterial: { publicKey: { hint: 'release-key' }, tlogEntries: [entryJson()], timestampVerificationData: {} },
    messageSignature: { messageDigest: { algorithm: 'SHA2_512', digest: b64(64, 9) }, signature: b64(71, 10) },
  };
  for (const [name, doc] of Object.entries({ message: messageBundleJson(), dsse: dsseBundleJson(), rekorV2, withKeyid, v01, v02 })) {
    const text = JSON.stringify(doc);
    assert.equal(serializeBundleJson(parseBundleJson(text)), text, name);
    assert.deepEqual(serializeBundle(parseBundle(doc)), doc, name);
  }
});

test('typed values: serialize then parse gives the same value', () => {
  const b: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: {
      content: { type: 'certificate', certificate: bytes(300, 1) },
      tlogEntries: [
        {
          logIndex: 2 ** 40,
          logId: bytes(32, 2),
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: 1_700_000_000,
          inclusionPromise: { signedEntryTimestamp: bytes(70, 3) },
          inclusionProof: { logIndex: 9, rootHash: bytes(32, 4), treeSize: 10, hashes: [bytes(32, 5)], checkpoint: CHECKPOINT },
          canonicalizedBody: bytes(50, 6),
        },
      ],
      rfc3161Timestamps: [bytes(500, 7), bytes(500, 8)],
    },
    content: {
      type: 'dsseEnvelope',
      envelope: { payload: bytes(10, 9), payloadType: 'application/vnd.in-toto+json', signatures: [{ sig: bytes(64, 10), keyid: '' }] },
    },
  };
  const again = parseBundleJson(serializeBundleJson(b));
  assert.deepEqual(again, b);
  assert.deepEqual(bundleLeafCertificate(again), bytes(300, 1));
  assert.deepEqual(bundleSignatureBytes(again), bytes(64, 10));
  const e = b.verificationMaterial.tlogEntries[0]!;
  assert.deepEqual(parseTransparencyLogEntry(serializeTransparencyLogEntry(e)), e);
});

test('protobuf JSON input forms: snake_case, integers as numbers, null as absent, line-wrapped base64', () => {
  const doc = messageBundleJson();
  const vm = doc.verificationMaterial;
  vm.timestamp_verification_data = vm.timestampVerificationData;
  delete vm.timestampVerificationData;
  vm.tlogEntries[0].logIndex = 5;
  vm.tlogEntries[0].inclusionPromise = null;
  vm.certificate.rawBytes = vm.certificate.rawBytes.replace(/(.{76})/g, '$1\n');
  const b = parseBundle(doc);
  assert.equal(b.verificationMaterial.tlogEntries[0]!.logIndex, 5);
  assert.equal(b.verificationMaterial.tlogEntries[0]!.inclusionPromise, undefined);
  assert.equal(b.verificationMaterial.rfc3161Timestamps.length, 1);
  assert.deepEqual(bundleLeafCertificate(b), bytes(400, 7));
  assert.equal(parseBundle({ ...messageBundleJson(), mediaType: BUNDLE_MEDIA_TYPE_V03_LEGACY }).mediaType, BUNDLE_MEDIA_TYPE_V03_LEGACY);
});

test('every required field: missing, it is named in the error', () => {
  const vm = 'verificationMaterial';
  const e0 = `${vm}.tlogEntries[0]`;
  assertRequiredFields(parseBundle, 'ERR_BUNDLE_INVALID', messageBundleJson(), [
    ['mediaType'],
    [vm],
    [`${vm}.certificate`, vm],
    [`${vm}.certificate.rawBytes`],
    [`${e0}.logId`],
    [`${e0}.logId.keyId`],
    [`${e0}.kindVersion`],
    [`${e0}.kindVersion.kind`],
    [`${e0}.kindVersion.version`],
    [`${e0}.canonicalizedBody`],
    [`${e0}.inclusionProof`, e0],
    [`${e0}.inclusionProof.rootHash`],
    [`${e0}.inclusionProof.checkpoint`],
    [`${e0}.inclusionProof.checkpoint.envelope`, `${e0}.inclusionProof.checkpoint`],
    [`${e0}.inclusionPromise.signedEntryTimestamp`],
    [`${vm}.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp`],
    ['messageSignature', ''],
    ['messageSignature.signature'],
    ['messageSignature.messageDigest.digest'],
    ['messageSignature.messageDigest.algorithm'],
  ]);
  assertRequiredFields(parseBundle, 'ERR_BUNDLE_INVALID', dsseBundleJson(), [
    ['dsseEnvelope.payload'],
    ['dsseEnvelope.payloadType'],
    ['dsseEnvelope.signatures'],
    ['dsseEnvelope.signatures[0].sig'],
  ]);
});

test('malformed input is refused with ERR_BUNDLE_INVALID naming the field', () => {
  const bad = mutationRefuser(parseBundle, 'ERR_BUNDLE_INVALID', messageBundleJson);
  const entry = (d: Json) => d.verificationMaterial.tlogEntries[0];
  throwsWithCode(() => parseBundleJson('{"mediaType":'), 'ERR_BUNDLE_INVALID', /not valid JSON/);
  throwsWithCode(() => parseBundle([]), 'ERR_BUNDLE_INVALID', /must be a JSON object/);
  bad((d) => (d.mediaType = 'application/json'), /unknown bundle media type/);
  bad((d) => (d.mediaType = 'application/vnd.dev.sigstore.bundle.v0.4+json'), /unsupported bundle version 0\.4/);
  bad((d) => (d.verificationMaterial.certificate.rawBytes = 'AB=='), /rawBytes: is not canonical base64/);
  bad((d) => (d.verificationMaterial.certificate.rawBytes = 'AAE'), /rawBytes: is not padded standard base64/);
  bad((d) => (d.verificationMaterial.certificate.rawBytes = 7), /rawBytes: must be a base64 string/);
  bad((d) => (entry(d).logIndex = '-1'), /logIndex: must be a non-negative decimal integer string/);
  bad((d) => (entry(d).logIndex = '05'), /logIndex: must be a non-negative decimal integer string/);
  bad((d) => (entry(d).logIndex = 2 ** 53), /logIndex: must be a non-negative integer below 2\^53/);
  bad((d) => (entry(d).logIndex = 1.5), /logIndex: must be a non-negative integer below 2\^53/);
  bad((d) => (entry(d).kindVersion.kind = 5), /kindVersion\.kind: must be a string/);
  bad((d) => (entry(d).log_index = '5'), /logIndex: given both as logIndex and log_index/);
  bad((d) => (entry(d).inclusionProof.treeSize = '1'), /inclusionProof\.logIndex: 1 is not below the tree size 1/);
  bad((d) => (entry(d).inclusionProof.rootHash = b64(31, 1)), /rootHash: must be 32 bytes/);
  bad((d) => d.verificationMaterial.tlogEntries.push(entryJson()), /tlogEntries\[1\]: duplicate entry/);
  bad(
    (d) => d.verificationMaterial.timestampVerificationData.rfc3161Timestamps.push({ signedTimestamp: b64(900, 8) }),
    /rfc3161Timestamps\[1\]: duplicates timestamp 0/,
  );
  bad((d) => {
    delete d.verificationMaterial.certificate;
    d.verificationMaterial.x509CertificateChain = { certificates: [{ rawBytes: b64(400, 7) }] };
  }, /x509CertificateChain: is not allowed in a v0\.3 bundle/);
  bad((d) => (d.verificationMaterial.publicKey = { hint: 'k' }), /more than one of publicKey, x509CertificateChain and certificate/);
  bad((d) => (d.messageSignature.messageDigest.digest = b64(20, 1)), /digest: is 20 bytes; sha256 digests are 32/);
  bad((d) => (d.messageSignature.messageDigest.algorithm = 'SHA3_256'), /algorithm: unsupported hash algorithm SHA3_256/);
  bad((d) => (d.messageSignature.messageDigest.algorithm = 'MD5'), /algorithm: unknown value "MD5"/);
  bad((d) => (d.dsseEnvelope = dsseBundleJson().dsseEnvelope), /has both messageSignature and dsseEnvelope/);
  bad((d) => d.dsseEnvelope.signatures.push({ sig: b64(71, 1) }), /signatures: must hold exactly one signature, found 2/, dsseBundleJson);
  // v0.1 wants a promise on every entry, v0.2 and later a proof.
  bad((d) => {
    d.mediaType = BUNDLE_MEDIA_TYPE_V01;
    delete d.verificationMaterial.tlogEntries[0].inclusionPromise;
  }, /needs an inclusionPromise/);
  bad((d) => {
    d.mediaType = BUNDLE_MEDIA_TYPE_V02;
    delete d.verificationMaterial.tlogEntries[0].inclusionProof;
  }, /v0\.2 bundle needs an inclusionProof/);
});
