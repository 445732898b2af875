// Interop with sigstore-js: @sigstore/sign's RekorWitness submits to our log (v1 and v2 URLs),
// and @sigstore/verify accepts the resulting tlog entries with a TrustedRoot listing our log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign as nodeSign, createHash } from 'node:crypto';
import { MessageSignatureBundleBuilder, DSSEBundleBuilder, RekorWitness, type Signer as SigstoreSigner } from '@sigstore/sign';
import { Verifier, toTrustMaterial, toSignedEntity } from '@sigstore/verify';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { TrustedRoot, PublicKeyDetails } from '@sigstore/protobuf-specs';
import { generateSigner } from '../../keys/src/memory.ts';
import { startTestLog, p256Key, certPem, testCa, b64, type ClientKey, type TestLog } from './helpers.ts';

function keySigner(k: ClientKey, hint: string): SigstoreSigner {
  return {
    sign: async (data: Buffer) => ({
      signature: nodeSign('sha256', data, { key: k.privateKey, dsaEncoding: 'der' }),
      key: { $case: 'publicKey', publicKey: k.pem, hint },
    }),
  };
}

function trustedRoot(log: TestLog, caDer?: Uint8Array): TrustedRoot {
  const t = log.service.trustedRootTlogs({ v1BaseUrl: `http://log.waxseal.test:${new URL(log.url).port}` });
  return TrustedRoot.fromJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [t.v1],
    certificateAuthorities: caDer
      ? [
          {
            subject: { organization: 'test', commonName: 'Test CA' },
            uri: 'https://ca.example',
            certChain: { certificates: [{ rawBytes: b64(caDer) }] },
            validFor: { start: '2020-01-01T00:00:00Z' },
          },
        ]
      : [],
    ctlogs: [],
    timestampAuthorities: [],
  });
}

for (const logKey of ['ecdsa-p256', 'ed25519'] as const) {
  test(`RekorWitness (v1 API) entries verify with @sigstore/verify (${logKey} log key)`, async () => {
    const log = await startTestLog({ signer: generateSigner(logKey) });
    try {
      const k = p256Key();
      const witness = new RekorWitness({ rekorBaseURL: log.url, fetchOnConflict: true });
      const keys = {
        'dev-key': {
          rawBytes: Buffer.from(k.spki),
          keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
          validFor: { start: new Date(Date.now() - 3600_000) },
        },
      };
      const verifier = new Verifier(toTrustMaterial(trustedRoot(log), keys), {
        tlogThreshold: 1,
        ctlogThreshold: 0,
        timestampThreshold: 1,
      });

      // hashedrekord 0.0.1 from a message signature.
      const artifact = Buffer.from(`artifact signed with a self-managed key (${logKey})`);
      const bundle = await new MessageSignatureBundleBuilder({ signer: keySigner(k, 'dev-key'), witnesses: [witness] }).create({
        data: artifact,
      });
      const entry = bundle.verificationMaterial.tlogEntries[0]!;
      assert.equal(entry.kindVersion?.kind, 'hashedrekord');
      assert.ok(entry.inclusionPromise, 'SET present');
      assert.ok(entry.inclusionProof?.checkpoint?.envelope.includes(' - 1193050959916656506\n'));
      const roundTripped = bundleFromJSON(bundleToJSON(bundle));
      const signer = verifier.verify(toSignedEntity(roundTripped, artifact));
      assert.ok(signer.key);
      // A tampered artifact fails (sigstore-js's own error type and code).
      assert.throws(() => verifier.verify(toSignedEntity(roundTripped, Buffer.from('other'))), {
        name: 'VerificationError',
        code: 'SIGNATURE_ERROR',
      });

      // Submitting the same signature again: 409, then RekorWitness fetches the existing entry.
      const again = await witness.testify({ $case: 'messageSignature', messageSignature: bundle.content.messageSignature }, k.pem);
      assert.equal(again.tlogEntries[0]!.logIndex, entry.logIndex);

      // dsse 0.0.1 and intoto 0.0.2 from a DSSE envelope.
      for (const entryType of ['dsse', 'intoto'] as const) {
        const payload = Buffer.from(
          JSON.stringify({
            _type: 'https://in-toto.io/Statement/v1',
            subject: [{ name: 'x', digest: { sha256: createHash('sha256').update(entryType).digest('hex') } }],
            predicateType: 'https://example.com/p',
            predicate: {},
          }),
        );
        const dsseBundle = await new DSSEBundleBuilder({
          signer: keySigner(k, 'dev-key'),
          witnesses: [new RekorWitness({ rekorBaseURL: log.url, entryType })],
        }).create({ data: payload, type: 'application/vnd.in-toto+json' });
        assert.equal(dsseBundle.verificationMaterial.tlogEntries[0]!.kindVersion?.kind, entryType);
        verifier.verify(toSignedEntity(dsseBundle));
      }
    } finally {
      await log.close();
    }
  });
}

test('RekorWitness with a certificate: v1 bundle verifies against the CA; v2 API answers a parsable TransparencyLogEntry', async () => {
  const ca = await testCa();
  const log = await startTestLog({ trustedCas: [certPem(ca.root)] });
  try {
    const k = p256Key();
    const leaf = await ca.leaf(k, 'release@example.com');
    const certSigner: SigstoreSigner = {
      sign: async (data: Buffer) => ({
        signature: nodeSign('sha256', data, { key: k.privateKey, dsaEncoding: 'der' }),
        key: { $case: 'x509Certificate', certificate: certPem(leaf) },
      }),
    };
    const artifact = Buffer.from('certificate-signed artifact');
    const bundle = await new MessageSignatureBundleBuilder({
      signer: certSigner,
      witnesses: [new RekorWitness({ rekorBaseURL: log.url })],
    }).create({ data: artifact });
    const verifier = new Verifier(toTrustMaterial(trustedRoot(log, ca.root.der)), {
      tlogThreshold: 1,
      ctlogThreshold: 0,
      timestampThreshold: 1,
    });
    const signer = verifier.verify(toSignedEntity(bundle, artifact), { subjectAlternativeName: 'release@example.com' });
    assert.equal(signer.identity?.subjectAlternativeName, 'release@example.com');

    const v2 = new RekorWitness({ rekorBaseURL: log.url, majorApiVersion: 2 });
    const sig = nodeSign('sha256', Buffer.from('v2 artifact'), { key: k.privateKey, dsaEncoding: 'der' });
    const digest = createHash('sha256').update('v2 artifact').digest();
    const res = await v2.testify(
      { $case: 'messageSignature', messageSignature: { messageDigest: { algorithm: 1, digest }, signature: sig } },
      certPem(leaf),
    );
    const tle = res.tlogEntries[0]!;
    assert.equal(tle.kindVersion?.version, '0.0.2');
    assert.deepEqual(Buffer.from(tle.logId!.keyId), Buffer.from(log.service.v2LogId));
    assert.ok(tle.inclusionProof!.hashes.length >= 0 && tle.inclusionProof!.checkpoint!.envelope.startsWith('log.waxseal.test\n'));
  } finally {
    await log.close();
  }
});
