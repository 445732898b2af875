// Tampering with real, valid bundles (from the shared vectors): every mutation of a signed or
// logged value is rejected with the check that guards it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { WaxsealError, ErrorCode } from '../../core/src/errors.ts';
import { assertWaxsealError, throwsWithCode } from '@waxseal/testkit';
import { utf8, fromUtf8 } from '../../core/src/bytes.ts';
import { parseDer } from '../../core/src/der.ts';
import { parseBundleJson, parseBundle, serializeBundle, type Bundle, type TrustedRoot } from '../../bundle/src/index.ts';
import { Verifier, type VerificationPolicy, type VerifierOptions } from '../src/index.ts';
import { parseTimestampResponse, verifyTimestamp } from '../src/timestamp.ts';
import { Authority } from '../src/chain.ts';
import { vectorsPresent, SKIP_MESSAGE, loadCase, runCase, trustedRootOf, type VectorCase } from './vectors/load.ts';

function flip(b: Uint8Array, i = b.length - 1): Uint8Array {
  const out = new Uint8Array(b);
  const at = i < 0 ? out.length + i : i;
  out[at] = out[at]! ^ 0x01;
  return out;
}

function clone(b: Bundle): Bundle {
  return parseBundle(JSON.parse(JSON.stringify(serializeBundle(b))));
}

function cloneRoot(r: TrustedRoot): TrustedRoot {
  return structuredClone(r);
}

/** The error code each failed check is reported with. */
const CODE_OF_CHECK: Record<string, ErrorCode> = {
  'artifact.digest': 'ERR_VERIFY_ARTIFACT',
  'artifact.required': 'ERR_VERIFY_ARTIFACT',
  'cert.chain': 'ERR_VERIFY_CERT_CHAIN',
  'dsse.predicate-type': 'ERR_VERIFY_DSSE',
  'dsse.subject': 'ERR_VERIFY_ARTIFACT',
  'identity.extension': 'ERR_VERIFY_IDENTITY',
  'identity.issuer': 'ERR_VERIFY_IDENTITY',
  'identity.san': 'ERR_VERIFY_IDENTITY',
  'key.mismatch': 'ERR_VERIFY_KEY',
  'key.validity': 'ERR_VERIFY_KEY',
  policy: 'ERR_INVALID_INPUT',
  sct: 'ERR_VERIFY_SCT',
  signature: 'ERR_VERIFY_SIGNATURE',
  'threshold.timestamp': 'ERR_VERIFY_THRESHOLD',
  'threshold.tlog': 'ERR_VERIFY_THRESHOLD',
  'timestamp.parse': 'ERR_VERIFY_TIMESTAMP',
  'tlog.body-mismatch': 'ERR_VERIFY_TLOG',
  'tlog.checkpoint': 'ERR_VERIFY_TLOG',
  'tlog.inclusion-proof': 'ERR_VERIFY_TLOG',
  'tlog.integrated-time': 'ERR_VERIFY_TLOG',
  'tlog.missing-proof': 'ERR_VERIFY_TLOG',
  'tlog.set': 'ERR_VERIFY_TLOG',
  'tlog.unsupported-kind': 'ERR_VERIFY_TLOG',
};

/** Asserts that verification fails at `check`, with the code that check is reported with. */
function expectFailure(c: VectorCase, check: string, over: Parameters<typeof runCase>[1] = {}): WaxsealError {
  const out = runCase(c, over);
  assert.ok(!out.ok, `expected ${check}, but the bundle verified`);
  const code = CODE_OF_CHECK[check];
  assert.ok(code, `no code listed for check ${check}`);
  return assertWaxsealError(out.error, code, { check }, check);
}

function expectOk(c: VectorCase, over: Parameters<typeof runCase>[1] = {}): void {
  const out = runCase(c, over);
  assert.ok(out.ok, out.ok ? '' : String((out.error as Error).message));
}

if (!vectorsPresent()) {
  test('tamper tests', { skip: SKIP_MESSAGE }, () => {});
} else {
  // Rekor v1 hashedrekord with SET and inclusion proof, certificate, artifact bytes.
  const v1 = loadCase('java-v0.3-hashedrekord-production');
  // Rekor v2 hashedrekord + RFC 3161 timestamp.
  const v2 = loadCase('java-rekor-v2-hashedrekord-tsa-staging');
  // DSSE logged as dsse 0.0.1 in Rekor v1.
  const dsse = loadCase('java-v0.3-dsse-rekor-v1-production');
  // DSSE known only by digest, intoto 0.0.2 entry.
  const intoto = loadCase('go-v0.1-intoto-production-sigstore-js-2.0.0');
  // DSSE logged in Rekor v2 as hashedrekord over the PAE.
  const v2dsse = loadCase('java-rekor-v2-dsse-production');
  // Self-managed key, TSA only.
  const keyed = loadCase('go-v0.3-public-key-tsa-only');

  const base = (c: VectorCase) => parseBundleJson(c.bundleText);
  const mutate = (c: VectorCase, f: (b: Bundle) => void): Bundle => {
    const b = clone(base(c));
    f(b);
    return b;
  };
  const entry0 = (b: Bundle) => b.verificationMaterial.tlogEntries[0]!;
  const withRoot = (c: VectorCase, f: (r: TrustedRoot) => void, options: VerifierOptions = c.options): Verifier => {
    const r = cloneRoot(trustedRootOf(c));
    f(r);
    return new Verifier(r, options);
  };

  test('the unmodified bases verify', () => {
    for (const c of [v1, v2, dsse, intoto, v2dsse, keyed]) expectOk(c);
  });

  test('message signature: signature, certificate, digest, artifact', () => {
    expectFailure(v1, 'signature', {
      bundle: mutate(v1, (b) => b.content.type === 'messageSignature' && (b.content.signature = flip(b.content.signature))),
    });
    // A different certificate (another signer's key): the signature no longer verifies.
    const other = base(loadCase('py-v0.3-hashedrekord-staging'));
    expectFailure(v1, 'signature', {
      bundle: mutate(v1, (b) => (b.verificationMaterial.content = other.verificationMaterial.content)),
    });
    // Same key, different certificate bytes: the log entry no longer names this certificate.
    expectFailure(v1, 'tlog.body-mismatch', {
      bundle: mutate(
        v1,
        (b) =>
          b.verificationMaterial.content.type === 'certificate' &&
          (b.verificationMaterial.content.certificate = flip(b.verificationMaterial.content.certificate)),
      ),
    });
    expectFailure(v1, 'artifact.digest', {
      bundle: mutate(
        v1,
        (b) =>
          b.content.type === 'messageSignature' &&
          b.content.messageDigest &&
          (b.content.messageDigest.digest = flip(b.content.messageDigest.digest)),
      ),
    });
    expectFailure(v1, 'artifact.digest', { artifact: { bytes: flip(v1.artifactBytes!) } });
    expectFailure(v1, 'artifact.required', { artifact: undefined });
    // Digest-only verification works, and a wrong digest is caught.
    const d = new Uint8Array(Buffer.from('a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf', 'hex'));
    expectOk(v1, { artifact: { digest: { algorithm: 'sha256', value: d } } });
    expectFailure(v1, 'artifact.digest', { artifact: { digest: { algorithm: 'sha256', value: flip(d) } } });
  });

  test('Rekor v1: SET, integrated time, log index, inclusion proof, checkpoint, body, log ID', () => {
    expectFailure(v1, 'tlog.set', {
      bundle: mutate(
        v1,
        (b) => (entry0(b).inclusionPromise!.signedEntryTimestamp = flip(entry0(b).inclusionPromise!.signedEntryTimestamp)),
      ),
    });
    expectFailure(v1, 'tlog.set', { bundle: mutate(v1, (b) => (entry0(b).integratedTime += 1)) });
    expectFailure(v1, 'tlog.set', { bundle: mutate(v1, (b) => (entry0(b).logIndex += 1)) });
    expectFailure(v1, 'tlog.inclusion-proof', {
      bundle: mutate(v1, (b) => (entry0(b).inclusionProof!.hashes[0] = flip(entry0(b).inclusionProof!.hashes[0]!))),
    });
    expectFailure(v1, 'tlog.inclusion-proof', { bundle: mutate(v1, (b) => (entry0(b).inclusionProof!.logIndex += 1)) });
    expectFailure(v1, 'tlog.checkpoint', {
      bundle: mutate(v1, (b) => (entry0(b).inclusionProof!.rootHash = flip(entry0(b).inclusionProof!.rootHash))),
    });
    expectFailure(v1, 'tlog.checkpoint', {
      bundle: mutate(v1, (b) => {
        const p = entry0(b).inclusionProof!;
        const lines = p.checkpoint.split('\n');
        lines[1] = String(Number(lines[1]) + 1); // tree size in the signed text
        p.checkpoint = lines.join('\n');
      }),
    });
    expectFailure(v1, 'tlog.checkpoint', {
      bundle: mutate(v1, (b) => {
        const p = entry0(b).inclusionProof!;
        p.checkpoint = p.checkpoint.replace(/(\u2014 \S+ )(\S)/, (_m, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
      }),
    });
    // A body for another digest: caught by the field comparison before the proof.
    expectFailure(v1, 'tlog.body-mismatch', {
      bundle: mutate(v1, (b) => {
        const e = entry0(b);
        e.canonicalizedBody = utf8(fromUtf8(e.canonicalizedBody).replace('a0cfc712', 'a0cfc713'));
      }),
    });
    expectFailure(v1, 'tlog.body-mismatch', {
      bundle: mutate(v1, (b) => (entry0(b).kindVersion = { kind: 'dsse', version: '0.0.1' })),
    });
    expectFailure(v1, 'tlog.unsupported-kind', {
      bundle: mutate(v1, (b) => (entry0(b).kindVersion = { kind: 'rekord', version: '0.0.1' })),
    });
    // An entry from a log the trusted root does not list is skipped, so the threshold fails.
    expectFailure(v1, 'threshold.tlog', { bundle: mutate(v1, (b) => (entry0(b).logId = flip(entry0(b).logId))) });
    // Without the SET, the integrated time is not trusted: no signing time remains.
    expectFailure(v1, 'threshold.timestamp', { bundle: mutate(v1, (b) => delete entry0(b).inclusionPromise) });
    // A log key that was not yet valid at the integrated time.
    expectFailure(v1, 'tlog.set', {
      verifier: withRoot(v1, (r) => (r.tlogs[0]!.publicKey.validFor = { start: new Date('2030-01-01T00:00:00Z') })),
    });
  });

  test('bundle rules: duplicate entries, v0.3 without inclusion proof', () => {
    const b = base(v1);
    const json = serializeBundle(b) as { verificationMaterial: { tlogEntries: unknown[] } };
    json.verificationMaterial.tlogEntries.push(json.verificationMaterial.tlogEntries[0]);
    throwsWithCode(() => parseBundle(json), 'ERR_BUNDLE_INVALID', /duplicate/);
    const noProof = serializeBundle(b) as { verificationMaterial: { tlogEntries: Record<string, unknown>[] } };
    delete noProof.verificationMaterial.tlogEntries[0]!.inclusionProof;
    throwsWithCode(() => parseBundle(noProof), 'ERR_BUNDLE_INVALID', /needs an inclusionProof/);
  });

  test('certificates: trusted CAs, chain links, SCTs', () => {
    expectFailure(v1, 'cert.chain', { verifier: withRoot(v1, (r) => (r.certificateAuthorities = [])) });
    // A corrupted intermediate in the trusted root: the cached link check fails.
    expectFailure(v1, 'cert.chain', {
      verifier: withRoot(v1, (r) => {
        for (const ca of r.certificateAuthorities) if (ca.certChain.length > 1) ca.certChain[0] = flip(ca.certChain[0]!);
      }),
    });
    // A CA whose validFor ended before the signing time.
    expectFailure(v1, 'cert.chain', {
      verifier: withRoot(v1, (r) => {
        for (const ca of r.certificateAuthorities)
          ca.validFor = { start: ca.validFor.start ?? new Date(0), end: new Date('2023-01-01T00:00:00Z') };
      }),
    });
    expectFailure(v1, 'sct', { verifier: withRoot(v1, (r) => (r.ctlogs = [])) });
    expectFailure(v1, 'sct', {
      verifier: withRoot(v1, (r) => (r.ctlogs[1]!.publicKey.validFor = { start: new Date('2030-01-01T00:00:00Z') })),
    });
    expectOk(v1, { verifier: withRoot(v1, (r) => (r.ctlogs = []), { ...v1.options, skipSctUnsafe: true }) });
    throwsWithCode(
      () => new Verifier(trustedRootOf(v1), { ctlogThreshold: 0 }),
      'ERR_INVALID_INPUT',
      /ctlogThreshold 0 disables SCT verification/,
    );
    throwsWithCode(
      () => new Verifier(trustedRootOf(v1), { tlogThreshold: -1 }),
      'ERR_INVALID_INPUT',
      /tlogThreshold must be a non-negative integer/,
    );
  });

  test('identity policy', () => {
    const id = { subjectAlternativeName: 'appu@google.com', issuer: 'https://accounts.google.com' };
    const pol = (over: object): VerificationPolicy => ({ identities: [{ ...id, ...over }] });
    expectOk(v1, { policy: pol({}) });
    expectFailure(v1, 'identity.san', { policy: pol({ subjectAlternativeName: 'appu@google.co' }) });
    expectFailure(v1, 'identity.issuer', { policy: pol({ issuer: 'https://accounts.google.com/' }) });
    // Regular expressions are unanchored (as in Go): a fragment matches.
    expectOk(v1, { policy: { identities: [{ subjectAlternativeNameRegExp: 'google', issuerRegExp: /accounts/ }] } });
    expectFailure(v1, 'identity.san', { policy: { identities: [{ subjectAlternativeNameRegExp: '^google', issuer: id.issuer }] } });
    expectFailure(v1, 'identity.issuer', {
      policy: { identities: [{ subjectAlternativeName: id.subjectAlternativeName, issuerRegExp: 'github' }] },
    });
    expectFailure(v1, 'identity.extension', { policy: pol({ extensions: { sourceRepositoryURI: 'https://github.com/x/y' } }) });
    expectOk(v1, { policy: pol({ extensions: { '1.3.6.1.4.1.57264.1.8': 'https://accounts.google.com' } }) });
    // Any identity may match.
    expectOk(v1, { policy: { identities: [{ subjectAlternativeName: 'someone@else', issuer: id.issuer }, id] } });
    // No identity policy is a configuration error unless explicitly waived.
    expectFailure(v1, 'policy', { policy: {} });
    expectFailure(v1, 'policy', { policy: { identities: [{ subjectAlternativeName: 'x' }] } });
    expectFailure(v1, 'policy', { policy: { identities: [{ subjectAlternativeNameRegExp: '(', issuer: 'x' }] } });
    expectOk(v1, { policy: { withoutIdentityUnsafe: true } });
    expectFailure(v1, 'key.mismatch', { policy: { publicKey: { publicKey: keyed.policy.publicKey!.publicKey } } });
  });

  test('Rekor v2: leaf reconstruction, inclusion at logIndex, C2SP checkpoint', () => {
    expectFailure(v2, 'signature', {
      bundle: mutate(v2, (b) => b.content.type === 'messageSignature' && (b.content.signature = flip(b.content.signature))),
    });
    expectFailure(v2, 'tlog.inclusion-proof', {
      bundle: mutate(v2, (b) => (entry0(b).inclusionProof!.hashes[0] = flip(entry0(b).inclusionProof!.hashes[0]!))),
    });
    expectFailure(v2, 'tlog.inclusion-proof', { bundle: mutate(v2, (b) => (entry0(b).logIndex += 1)) });
    expectFailure(v2, 'tlog.checkpoint', {
      bundle: mutate(v2, (b) => {
        const p = entry0(b).inclusionProof!;
        p.checkpoint = p.checkpoint.replace(/^[^\n]+/, 'log2025-alpha9.rekor.sigstage.dev');
      }),
    });
    expectFailure(v2, 'tlog.checkpoint', {
      bundle: mutate(v2, (b) => {
        const p = entry0(b).inclusionProof!;
        const lines = p.checkpoint.split('\n');
        lines[1] = String(Number(lines[1]) + 1);
        p.checkpoint = lines.join('\n');
      }),
    });
    // A v2 entry has no integrated time: without the RFC 3161 timestamp there is no signing time.
    expectFailure(v2, 'threshold.timestamp', { bundle: mutate(v2, (b) => (b.verificationMaterial.rfc3161Timestamps = [])) });
    expectFailure(v2, 'threshold.timestamp', { verifier: withRoot(v2, (r) => (r.timestampAuthorities = [])) });
    expectFailure(v2, 'tlog.missing-proof', {
      bundle: (() => {
        const b = mutate(v2, () => {});
        delete entry0(b).inclusionProof;
        return b;
      })(),
    });
  });

  test('RFC 3161: token signature, imprint, truncation', () => {
    const b = base(v2);
    const tok = b.verificationMaterial.rfc3161Timestamps[0]!;
    const sig = b.content.type === 'messageSignature' ? b.content.signature : new Uint8Array();
    const tsas = trustedRootOf(v2).timestampAuthorities.map((a, i) => new Authority(i, a));
    const good = verifyTimestamp(parseTimestampResponse(tok), sig, tsas);
    assert.equal(good.time.toISOString(), parseTimestampResponse(tok).genTime.toISOString());
    const check = (f: () => unknown, name: string) => throwsWithCode(f, 'ERR_VERIFY_TIMESTAMP', { check: name }, name);
    // The CMS signature (the last bytes of the token) no longer verifies.
    check(() => verifyTimestamp(parseTimestampResponse(flip(tok)), sig, tsas), 'timestamp.signature');
    check(() => verifyTimestamp(parseTimestampResponse(tok), flip(sig), tsas), 'timestamp.imprint');
    check(() => verifyTimestamp(parseTimestampResponse(tok), sig, []), 'timestamp.authority');
    check(() => parseTimestampResponse(tok.subarray(0, tok.length - 1)), 'timestamp.parse');
    // A bare TimeStampToken (ContentInfo) is accepted as well as a full TimeStampResp.
    const bare = parseDer(tok).children[1]!.raw;
    assert.equal(verifyTimestamp(parseTimestampResponse(bare), sig, tsas).time.getTime(), good.time.getTime());
    expectOk(v2, { bundle: mutate(v2, (bb) => (bb.verificationMaterial.rfc3161Timestamps = [bare])) });
    // A response whose status is not granted is malformed for our purposes.
    const rejection = new Uint8Array(tok);
    const status = parseDer(tok).children[0]!.children[0]!;
    rejection[status.raw.byteOffset - tok.byteOffset + 2] = 2;
    check(() => parseTimestampResponse(rejection), 'timestamp.parse');
    // In a bundle: a token that parses but does not verify is ignored, one that does not parse rejects.
    const e = expectFailure(v2, 'threshold.timestamp', {
      bundle: mutate(v2, (bb) => (bb.verificationMaterial.rfc3161Timestamps = [flip(tok)])),
    });
    assert.match(String((e.detail?.ignored as string[] | undefined)?.[0]), /timestamp 0: timestamp.signature/);
    expectFailure(v2, 'timestamp.parse', { bundle: mutate(v2, (bb) => (bb.verificationMaterial.rfc3161Timestamps = [tok.subarray(1)])) });
  });

  test('DSSE: payload, payload type, signature, subject, predicate type', () => {
    const env = (b: Bundle) => (b.content.type === 'dsseEnvelope' ? b.content.envelope : assert.fail('not DSSE'));
    expectFailure(dsse, 'signature', { bundle: mutate(dsse, (b) => (env(b).payload = flip(env(b).payload, 10))) });
    expectFailure(dsse, 'signature', { bundle: mutate(dsse, (b) => (env(b).payloadType = 'application/json')) });
    expectFailure(dsse, 'signature', { bundle: mutate(dsse, (b) => (env(b).signatures[0]!.sig = flip(env(b).signatures[0]!.sig))) });
    expectFailure(dsse, 'dsse.subject', { artifact: { bytes: flip(dsse.artifactBytes!) } });
    expectOk(dsse, { artifact: undefined });
    expectFailure(dsse, 'dsse.predicate-type', { policy: { ...dsse.policy, predicateType: 'https://example.com/other' } });
    const d = intoto.artifact && 'digest' in intoto.artifact ? intoto.artifact.digest : assert.fail('digest case');
    expectFailure(intoto, 'dsse.subject', {
      artifact: { digest: { algorithm: d.algorithm, value: String(d.value).replace(/^./, (ch) => (ch === '0' ? '1' : '0')) } },
    });
    expectFailure(v2dsse, 'signature', { bundle: mutate(v2dsse, (b) => (env(b).payload = flip(env(b).payload, 10))) });
    expectFailure(v2dsse, 'dsse.subject', { artifact: { bytes: flip(v2dsse.artifactBytes!) } });
  });

  test('public-key bundles: key, validity window, policy', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expectFailure(keyed, 'signature', { policy: { publicKey: { publicKey: other } } });
    expectFailure(keyed, 'key.validity', {
      policy: { publicKey: { ...keyed.policy.publicKey!, validFor: { end: new Date('2020-01-01T00:00:00Z') } } },
    });
    expectOk(keyed, { policy: { publicKey: { ...keyed.policy.publicKey!, validFor: { start: new Date('2026-01-01T00:00:00Z') } } } });
    expectFailure(keyed, 'key.mismatch', { policy: {} });
    // A logged key bundle whose integrated time falls outside the key's window.
    const npm = loadCase('go-examples-v0.1-npm-publish-public-key');
    expectOk(npm);
    expectFailure(npm, 'tlog.integrated-time', {
      policy: { publicKey: { ...npm.policy.publicKey!, validFor: { end: new Date('2023-01-01T00:00:00Z') } } },
    });
    expectFailure(keyed, 'key.mismatch', { policy: { publicKey: { publicKey: 'not a key' } } });
  });
}
