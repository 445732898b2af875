// Decisions over real signatures made here with throwaway keys (legacy simple-signing layers and
// DSSE attestations, as cosign stores them), checked by the real verifier: static authorities,
// OR across authorities, CIP-level CEL over authorityMatches (k-of-n), attestation policies,
// warn mode, and signatures for another digest.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { test } from 'node:test';
import { pae, sha256, toHex, utf8 } from '@waxseal/core';
import {
  COSIGN,
  legacyAnnotations,
  legacyAttestationLayer,
  legacyLayerToBundle,
  simpleSigningPayload,
  type Attachment,
} from '@waxseal/oci';
import { compileCel } from './cel.ts';
import {
  decideImage,
  evaluatePolicy,
  evidenceRequest,
  kmsKeyUris,
  needsConfigFiles,
  remotePolicyKey,
  remotePolicyRefs,
  type Evidence,
} from './evaluate.ts';
import { parseClusterImagePolicy, parseImagePolicy, type ClusterImagePolicy } from './resources.ts';

const DIGEST = `sha256:${toHex(sha256(utf8('image')))}`;
const OTHER = `sha256:${toHex(sha256(utf8('other image')))}`;
const IMAGE = 'registry.local:5000/team/app:v1';

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}
const alice = keyPair();
const bob = keyPair();
const carol = keyPair();

function signatureFor(k: ReturnType<typeof keyPair>, digest = DIGEST, i = 0): Attachment {
  const payload = simpleSigningPayload('registry.local:5000/team/app', digest);
  const signature = new Uint8Array(sign('sha256', payload, k.privateKey));
  const layer = { mediaType: COSIGN.simpleSigningMediaType, payload, annotations: legacyAnnotations({ signature }) };
  return { format: 'legacy', location: `sha256-x.sig#${i}`, bundle: legacyLayerToBundle(layer, 'test'), payload };
}

function attestationFor(k: ReturnType<typeof keyPair>, predicateType: string, predicate: unknown, i = 0): Attachment {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'registry.local:5000/team/app', digest: { sha256: DIGEST.slice(7) } }],
    predicateType,
    predicate,
  };
  const payload = utf8(JSON.stringify(statement));
  const payloadType = 'application/vnd.in-toto+json';
  const sig = new Uint8Array(sign('sha256', pae(payloadType, payload), k.privateKey));
  const layer = legacyAttestationLayer({ payload, payloadType, signatures: [{ sig, keyid: '' }] }, predicateType, {});
  return { format: 'legacy', location: `sha256-x.att#${i}`, bundle: legacyLayerToBundle(layer, 'test') };
}

function cip(spec: Record<string, unknown>, name = 'p'): ClusterImagePolicy {
  return parseClusterImagePolicy({
    apiVersion: 'policy.sigstore.dev/v1beta1',
    kind: 'ClusterImagePolicy',
    metadata: { name },
    spec: { images: [{ glob: '**' }], ...spec },
  });
}

const keyAuth = (name: string, k: ReturnType<typeof keyPair>, extra: Record<string, unknown> = {}) => ({
  name,
  key: { data: k.pem },
  ...extra,
});

/** Evidence for every authority of the policy: the same attachments for each. */
function decide(p: ClusterImagePolicy, signatures: Attachment[], attestations: Attachment[] = []) {
  const evidence = new Map<string, Evidence>();
  for (const a of p.spec.authorities) {
    const r = evidenceRequest(a);
    if (r) evidence.set(r.key, { attachments: r.kind === 'signature' ? signatures : attestations });
  }
  return evaluatePolicy(p, { image: IMAGE, digest: DIGEST, evidence, trustRoots: new Map() });
}

test('a key authority admits a signature by its key and refuses others, naming policy and authority', () => {
  const p = cip({ authorities: [keyAuth('alice', alice)] });
  const ok = decide(p, [signatureFor(alice)]);
  assert.equal(ok.passed, true);
  assert.equal(ok.authorityMatches.alice?.signatures?.length, 1);
  assert.match(ok.authorityMatches.alice!.signatures![0]!.id!, /^[0-9a-f]{64}$/);
  const no = decide(p, [signatureFor(bob)]);
  assert.equal(no.passed, false);
  assert.match(no.errors[0]!, /^failed policy: ClusterImagePolicy p: authority alice: signature key validation failed: /);
  const none = decide(p, []);
  assert.match(none.errors[0]!, /authority alice: .*no signatures found/);
  // A signature of the same key over another digest does not count.
  const moved = decide(p, [signatureFor(alice, OTHER)]);
  assert.equal(moved.passed, false);
  assert.match(moved.errors[0]!, /not for sha256:/);
});

test('authorities are ORed; the errors of failed ones are dropped once one matched', () => {
  const p = cip({ authorities: [keyAuth('alice', alice), keyAuth('bob', bob)] });
  const d = decide(p, [signatureFor(bob)]);
  assert.equal(d.passed, true);
  assert.deepEqual(Object.keys(d.authorityMatches), ['bob']);
  assert.deepEqual(d.errors, []);
});

test('static pass and fail', () => {
  assert.equal(decide(cip({ authorities: [{ static: { action: 'pass' } }] }), []).passed, true);
  const f = decide(cip({ authorities: [{ static: { action: 'fail', message: 'frozen' } }] }), []);
  assert.equal(f.passed, false);
  assert.match(f.errors[0]!, /authority authority-0: disallowed by static policy: frozen/);
  assert.deepEqual(decide(cip({ authorities: [{ static: { action: 'pass' } }] }), []).authorityMatches, {
    'authority-0': { static: true },
  });
});

test('CIP-level CEL policy: 2 of 3 authorities over authorityMatches', () => {
  const twoOfThree = cip({
    authorities: [keyAuth('alice', alice), keyAuth('bob', bob), keyAuth('carol', carol)],
    policy: { type: 'cel', data: 'size(authorityMatches) >= 2' },
  });
  assert.equal(decide(twoOfThree, [signatureFor(alice), signatureFor(bob, DIGEST, 1)]).passed, true);
  const one = decide(twoOfThree, [signatureFor(alice)]);
  assert.equal(one.passed, false);
  assert.match(one.errors.join('\n'), /failed policy: ClusterImagePolicy p: policy: spec\.policy: CEL expression evaluated to false/);
  // "signature by alice AND by bob", reading the authorityMatches shape.
  const both = cip({
    authorities: [keyAuth('alice', alice), keyAuth('bob', bob)],
    policy: { type: 'cel', data: 'has(authorityMatches.alice) && has(authorityMatches.bob) && size(authorityMatches.bob.signatures) > 0' },
  });
  assert.equal(decide(both, [signatureFor(alice), signatureFor(bob, DIGEST, 1)]).passed, true);
  assert.equal(decide(both, [signatureFor(bob)]).passed, false);
});

test('attestations: predicate type and per-attestation CEL policy', () => {
  const p = cip({
    authorities: [
      keyAuth('att', alice, {
        attestations: [
          {
            name: 'prov',
            predicateType: 'https://slsa.dev/provenance/v1',
            policy: { type: 'cel', data: 'predicate.buildDefinition.buildType == "https://example.com/build/v1"' },
          },
        ],
      }),
    ],
  });
  const good = attestationFor(alice, 'https://slsa.dev/provenance/v1', { buildDefinition: { buildType: 'https://example.com/build/v1' } });
  const bad = attestationFor(alice, 'https://slsa.dev/provenance/v1', { buildDefinition: { buildType: 'https://evil.example/build' } }, 1);
  const vuln = attestationFor(alice, 'https://cosign.sigstore.dev/attestation/vuln/v1', {}, 2);
  const ok = decide(p, [], [bad, good]);
  assert.equal(ok.passed, true, ok.errors.join('\n'));
  assert.equal(ok.authorityMatches.att?.attestations?.prov?.length, 1);
  const policyFails = decide(p, [], [bad]);
  assert.match(policyFails.errors[0]!, /attestation prov: policy failed: .*evaluated to false/);
  const wrongType = decide(p, [], [vuln]);
  assert.match(
    wrongType.errors[0]!,
    /no matching attestations with type https:\/\/slsa\.dev\/provenance\/v1, checked the following predicateTypes: .*vuln/,
  );
  const otherKey = decide(
    p,
    [],
    [attestationFor(bob, 'https://slsa.dev/provenance/v1', { buildDefinition: { buildType: 'https://example.com/build/v1' } })],
  );
  assert.equal(otherKey.passed, false);
  // An alias in the policy matches the full URI in the statement.
  const alias = cip({ authorities: [keyAuth('att', alice, { attestations: [{ name: 'v', predicateType: 'vuln' }] })] });
  assert.equal(decide(alias, [], [vuln]).passed, true);
});

test('warn mode turns failures into warnings; decideImage ANDs policies and applies no-match', () => {
  const warn = cip({ mode: 'warn', authorities: [keyAuth('alice', alice)] }, 'w');
  const d = decide(warn, [signatureFor(bob)]);
  assert.equal(d.passed, false);
  assert.deepEqual(d.errors, []);
  assert.match(d.warnings[0]!, /failed policy: ClusterImagePolicy w: authority alice/);

  const enforce = cip({ authorities: [keyAuth('alice', alice)] }, 'e');
  const evidence = new Map<string, Evidence>();
  const r = evidenceRequest(enforce.spec.authorities[0]!)!;
  evidence.set(r.key, { attachments: [signatureFor(bob)] });
  const input = { image: IMAGE, digest: DIGEST, evidence, trustRoots: new Map() };
  const v = decideImage([warn, enforce], input);
  assert.equal(v.allowed, false);
  assert.equal(v.errors.length, 1);
  assert.equal(v.warnings.length, 1);
  assert.deepEqual(v.policies, ['ClusterImagePolicy w', 'ClusterImagePolicy e']);
  assert.equal(decideImage([warn], input).allowed, true);
  assert.equal(decideImage([], input, 'deny').allowed, false);
  assert.match(decideImage([], input, 'deny').errors[0]!, /no matching policies/);
  assert.equal(decideImage([], input, 'allow').allowed, true);
  assert.equal(decideImage([], input, 'warn').warnings.length, 1);

  // A namespaced ImagePolicy only adds requirements: alone, it does not count as coverage.
  const ns = parseImagePolicy({
    apiVersion: 'policy.waxseal.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'team', namespace: 'payments' },
    spec: { images: [{ glob: '**' }], authorities: [{ name: 'pass', static: { action: 'pass' } }] },
  });
  const alone = decideImage([ns], input, 'deny');
  assert.equal(alone.allowed, false);
  assert.match(alone.errors[0]!, /no matching policies/);
  assert.equal(decideImage([ns], input, 'allow').allowed, true);
  const adds = parseImagePolicy({
    apiVersion: 'policy.waxseal.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'strict', namespace: 'payments' },
    spec: { images: [{ glob: '**' }], authorities: [{ name: 'no', static: { action: 'fail' } }] },
  });
  const pass = cip({ authorities: [{ name: 'pass', static: { action: 'pass' } }] }, 'open');
  assert.equal(decideImage([pass], input).allowed, true);
  const both = decideImage([pass, adds], input);
  assert.equal(both.allowed, false);
  assert.match(both.errors.join('\n'), /ImagePolicy payments\/strict/);
});

test('a fetch error or a missing trust root fails only that authority, with the reason', () => {
  const p = cip({
    authorities: [
      keyAuth('alice', alice),
      { name: 'kl', keyless: { url: 'https://ca.example', trustRootRef: 'nope', identities: [{ issuer: 'i', subject: 's' }] } },
    ],
  });
  const evidence = new Map<string, Evidence>();
  for (const a of p.spec.authorities)
    evidence.set(evidenceRequest(a)!.key, { attachments: [], error: 'registry.local:5000 is unreachable' });
  const d = evaluatePolicy(p, { image: IMAGE, digest: DIGEST, evidence, trustRoots: new Map() });
  assert.equal(d.passed, false);
  assert.match(d.errors.join('\n'), /authority alice: registry\.local:5000 is unreachable/);
  const evidence2 = new Map<string, Evidence>();
  for (const a of p.spec.authorities) evidence2.set(evidenceRequest(a)!.key, { attachments: [] });
  assert.match(
    evaluatePolicy(p, { image: IMAGE, digest: DIGEST, evidence: evidence2, trustRoots: new Map() }).errors.join('\n'),
    /authority kl: trustRootRef nope not found/,
  );
});

test('key.kms: the fetched key verifies; a fetch failure or a missing key fails that authority with the reason', () => {
  const uri = 'awskms://kms.example/alias/release?region=eu-west-1';
  const p = cip({ authorities: [{ name: 'kms', key: { kms: uri } }] });
  const evidence = new Map<string, Evidence>([[evidenceRequest(p.spec.authorities[0]!)!.key, { attachments: [signatureFor(alice)] }]]);
  const base = { image: IMAGE, digest: DIGEST, evidence, trustRoots: new Map() };
  assert.equal(evaluatePolicy(p, { ...base, kmsKeys: new Map([[uri, alice.pem]]) }).passed, true);
  const wrong = evaluatePolicy(p, { ...base, kmsKeys: new Map([[uri, bob.pem]]) });
  assert.equal(wrong.passed, false);
  assert.match(wrong.errors[0]!, /authority kms: signature key validation failed/);
  const failed = evaluatePolicy(p, { ...base, kmsErrors: new Map([[uri, 'AWS KMS key alias/release not found']]) });
  assert.match(
    failed.errors[0]!,
    /authority kms: key\.kms awskms:\/\/kms\.example\/alias\/release\?region=eu-west-1: AWS KMS key alias\/release not found/,
  );
  assert.match(evaluatePolicy(p, base).errors[0]!, /key\.kms .*: the public key has not been fetched/);
  assert.deepEqual(kmsKeyUris([p]), [uri]);
});

test('remote policies: the compiled program from the app layer decides; without it the reason is given', () => {
  const sum = 'a'.repeat(64);
  const p = cip({
    authorities: [keyAuth('alice', alice)],
    policy: { type: 'cel', remote: { url: 'https://policies.example/p.cel', sha256sum: sum.toUpperCase() } },
  });
  assert.deepEqual(p.spec.policy?.remote, { url: 'https://policies.example/p.cel', sha256sum: sum });
  assert.equal(p.spec.policy?.program, undefined);
  const [ref] = remotePolicyRefs([p]);
  const evidence = new Map<string, Evidence>([[evidenceRequest(p.spec.authorities[0]!)!.key, { attachments: [signatureFor(alice)] }]]);
  const base = { image: IMAGE, digest: DIGEST, evidence, trustRoots: new Map() };
  const allow = compileCel('size(authorityMatches.alice.signatures) == 1', 'test');
  const deny = compileCel('size(authorityMatches) > 1', 'test');
  assert.equal(evaluatePolicy(p, { ...base, remotePolicies: new Map([[remotePolicyKey(ref!), allow]]) }).passed, true);
  assert.match(
    evaluatePolicy(p, { ...base, remotePolicies: new Map([[remotePolicyKey(ref!), deny]]) }).errors[0]!,
    /failed policy: ClusterImagePolicy p: policy: /,
  );
  assert.match(
    evaluatePolicy(p, { ...base, remotePolicyErrors: new Map([[remotePolicyKey(ref!), 'HTTP 404']]) }).errors[0]!,
    /failed policy: ClusterImagePolicy p: policy: remote policy https:\/\/policies\.example\/p\.cel: HTTP 404/,
  );
});

test('fetchConfigFile: the config by platform reaches the policy; a fetch failure is the reason', () => {
  const p = cip({
    authorities: [{ static: { action: 'pass' } }],
    policy: { type: 'cel', fetchConfigFile: true, data: "config['linux/amd64'].os == 'linux'" },
  });
  assert.equal(needsConfigFiles([p]), true);
  const base = { image: IMAGE, digest: DIGEST, evidence: new Map(), trustRoots: new Map() };
  assert.equal(evaluatePolicy(p, { ...base, config: { 'linux/amd64': { os: 'linux', architecture: 'amd64' } } }).passed, true);
  assert.equal(evaluatePolicy(p, { ...base, config: { 'linux/amd64': { os: 'windows' } } }).passed, false);
  assert.match(evaluatePolicy(p, { ...base, configError: 'registry down' }).errors[0]!, /policy: fetchConfigFile: registry down/);
});
