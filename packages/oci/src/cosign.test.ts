import assert from 'node:assert/strict';
import { test } from 'node:test';
import { throwsWithCode } from '@waxseal/testkit';
import {
  COSIGN,
  bundleReferrerManifest,
  legacyAnnotations,
  legacyLayerToBundle,
  legacySignatureImage,
  legacyTag,
  parseLegacyAnnotations,
  parseSimpleSigning,
  signStatement,
  simpleSigningPayload,
} from './cosign.ts';
import { EMPTY_JSON, digestOf, parseManifest } from './manifest.ts';

const D = `sha256:${'0f'.repeat(32)}`;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

test('simple-signing payloads: Go encoding, and parsed back (field names case-insensitively, as Go does)', () => {
  assert.equal(
    dec(simpleSigningPayload('r.example/app', D)),
    `{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`,
  );
  assert.match(dec(simpleSigningPayload('r/a', D, { z: '1', a: '2' })), /"optional":\{"a":"2","z":"1"\}\}$/);
  const p = parseSimpleSigning(
    enc(`{"critical":{"identity":{"docker-reference":"x"},"image":{"Docker-manifest-digest":"${D}"},"type":"t"}}`),
  );
  assert.equal(p.dockerManifestDigest, D);
  throwsWithCode(() => parseSimpleSigning(enc('{"critical":{}}')), 'ERR_INVALID_INPUT', { check: 'image.payload' });
});

test('legacy tags and annotations round-trip', () => {
  assert.equal(legacyTag(D, 'sig'), `sha256-${'0f'.repeat(32)}.sig`);
  const sig = new Uint8Array([1, 2, 3]);
  const a = legacyAnnotations({ signature: sig, rfc3161Timestamp: new Uint8Array([9, 9]) });
  assert.deepEqual(Object.keys(a).sort(), [COSIGN.annotations.signature, COSIGN.annotations.rfc3161].sort());
  assert.equal(a[COSIGN.annotations.rfc3161], '{"SignedRFC3161Timestamp":"CQk="}');
  const back = parseLegacyAnnotations(a, 'layer');
  assert.deepEqual(back.signature, sig);
  assert.deepEqual(back.rfc3161Timestamp, new Uint8Array([9, 9]));
});

test('appending to a legacy signature manifest keeps the earlier layers', () => {
  const l1 = { mediaType: COSIGN.simpleSigningMediaType, payload: enc('one'), annotations: { [COSIGN.annotations.signature]: 'AQ==' } };
  const l2 = { mediaType: COSIGN.simpleSigningMediaType, payload: enc('two'), annotations: { [COSIGN.annotations.signature]: 'Ag==' } };
  const first = legacySignatureImage([], [l1]);
  const m1 = parseManifest(first.manifest, undefined);
  assert.equal(m1.kind, 'manifest');
  if (m1.kind !== 'manifest') return;
  const second = parseManifest(legacySignatureImage(m1.manifest.layers, [l2]).manifest, undefined);
  if (second.kind !== 'manifest') return assert.fail('manifest');
  assert.deepEqual(
    second.manifest.layers.map((l) => l.digest),
    [digestOf(enc('one')), digestOf(enc('two'))],
  );
  assert.match(dec(first.config), /"rootfs":\{"type":"layers","diff_ids":\["sha256:[0-9a-f]{64}"\]\}/);
});

test('a legacy layer of another media type is refused', () => {
  throwsWithCode(
    () =>
      legacyLayerToBundle({ mediaType: 'text/plain', payload: enc('x'), annotations: { [COSIGN.annotations.signature]: 'AQ==' } }, 'tag#0'),
    'ERR_INVALID_INPUT',
    { check: 'image.layer' },
  );
  throwsWithCode(
    () => legacyLayerToBundle({ mediaType: COSIGN.dsseMediaType, payload: enc('{"no":1}'), annotations: {} }, 'tag#0'),
    'ERR_INVALID_INPUT',
    {
      check: 'image.layer',
    },
  );
});

test("the bundle referrer manifest is cosign's (BUNDLE_SPEC.md)", () => {
  const bundle = enc('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
  const subject = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: D, size: 123 };
  const { manifest } = bundleReferrerManifest(subject, bundle, {
    content: 'dsse-envelope',
    predicateType: COSIGN.signPredicateType,
    created: new Date(0),
  });
  const m = JSON.parse(dec(manifest));
  assert.equal(m.artifactType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  assert.deepEqual(m.config, {
    mediaType: 'application/vnd.oci.empty.v1+json',
    size: 2,
    digest: digestOf(EMPTY_JSON),
    artifactType: m.artifactType,
  });
  assert.equal(digestOf(EMPTY_JSON), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  assert.deepEqual(m.layers, [
    { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', size: bundle.length, digest: digestOf(bundle) },
  ]);
  assert.deepEqual(m.subject, subject);
  assert.deepEqual(m.annotations, {
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1',
    'org.opencontainers.image.created': '1970-01-01T00:00:00Z',
  });
  const st = signStatement(D, { team: 'blue' });
  assert.deepEqual(st.subject, [{ digest: { sha256: '0f'.repeat(32) }, annotations: { team: 'blue' } }]);
  assert.equal(st.predicateType, 'https://sigstore.dev/cosign/sign/v1');
});
