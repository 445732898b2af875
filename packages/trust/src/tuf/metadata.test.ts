import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { MetadataKind, Metadata as TufJsMetadata, Root } from '@tufjs/models';
import { throwsWithCode } from '@waxseal/testkit';
import { generateSigner, KeyObjectSigner } from '../../../keys/src/memory.ts';
import {
  TUF_SPEC_VERSION,
  canonicalJsonBytes,
  encodeMetadata,
  formatExpires,
  parseMetadata,
  signMetadata,
  tufKeyForSigner,
  verifyThreshold,
} from './metadata.ts';

const dec = new TextDecoder();

function rootFor(signers: KeyObjectSigner[], threshold: number, version = 1): Root {
  const keys = Object.fromEntries(signers.map((s) => [tufKeyForSigner(s).keyID, tufKeyForSigner(s).toJSON()]));
  const keyids = Object.keys(keys).sort();
  return Root.fromJSON({
    spec_version: TUF_SPEC_VERSION,
    version,
    expires: formatExpires(new Date(Date.now() + 86_400_000)),
    keys,
    roles: {
      root: { keyids, threshold },
      targets: { keyids, threshold: 1 },
      snapshot: { keyids, threshold: 1 },
      timestamp: { keyids, threshold: 1 },
    },
    consistent_snapshot: true,
  });
}

/** The metadata as a client reads it: our file bytes, parsed by @tufjs/models itself. */
function reparse(md: TufJsMetadata<Root>): TufJsMetadata<Root> {
  return TufJsMetadata.fromJSON(MetadataKind.Root, JSON.parse(dec.decode(encodeMetadata(md))));
}

test('TUF key objects use the securesystemslib forms (ecdsa PEM, ed25519 hex) and key IDs', () => {
  const ed = tufKeyForSigner(generateSigner('ed25519'));
  assert.deepEqual([ed.keyType, ed.scheme], ['ed25519', 'ed25519']);
  assert.match(ed.keyVal['public']!, /^[0-9a-f]{64}$/);
  const ec = tufKeyForSigner(generateSigner('ecdsa-p256'));
  assert.deepEqual([ec.keyType, ec.scheme], ['ecdsa', 'ecdsa-sha2-nistp256']);
  assert.match(ec.keyVal['public']!, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  assert.equal(tufKeyForSigner(generateSigner('ecdsa-p384')).scheme, 'ecdsa-sha2-nistp384');
  // Key ID: SHA-256 over the canonical JSON of exactly {keytype, scheme, keyval}, as securesystemslib computes it.
  assert.match(ec.keyID, /^[0-9a-f]{64}$/);
  // (a PEM holds no quote or backslash, so it goes into canonical JSON verbatim)
  const canon = `{"keytype":"ecdsa","keyval":{"public":"${ec.keyVal['public']}"},"scheme":"ecdsa-sha2-nistp256"}`;
  assert.equal(ec.keyID, createHash('sha256').update(canon).digest('hex'));
});

test('TUF refuses keys clients cannot verify (RSA PKCS#1 v1.5, P-256 with SHA-384)', () => {
  const rsa = new KeyObjectSigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'memory://rsa');
  throwsWithCode(() => tufKeyForSigner(rsa), 'ERR_KEY_UNSUPPORTED');
  const p256 = new KeyObjectSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'memory://p', 'sha384');
  throwsWithCode(() => tufKeyForSigner(p256), 'ERR_KEY_UNSUPPORTED');
});

test('canonical JSON is OLPC (not RFC 8785) and refuses what it cannot encode', () => {
  // Sorted keys, no whitespace, only backslash and quote escaped: control characters stay raw.
  assert.equal(dec.decode(canonicalJsonBytes({ b: 1, a: [true, null, 'x"\\\n\u0001é'] })), '{"a":[true,null,"x\\"\\\\\n\u0001é"],"b":1}');
  throwsWithCode(() => canonicalJsonBytes({ v: 1.5 }), 'ERR_INVALID_INPUT');
  throwsWithCode(() => canonicalJsonBytes({ v: undefined }), 'ERR_INVALID_INPUT');
});

test('our signatures verify with @tufjs/models after a round trip through our file encoding', async () => {
  for (const kinds of [['ed25519'], ['ecdsa-p256'], ['ecdsa-p384'], ['ed25519', 'ecdsa-p256', 'ecdsa-p256']] as const) {
    const signers = kinds.map((k) => generateSigner(k));
    const md = await signMetadata(rootFor(signers, signers.length), signers);
    const ids = Object.keys(md.signatures);
    assert.deepEqual(ids, [...ids].sort(), 'signatures in key ID order');
    const parsed = reparse(md);
    parsed.verifyDelegate('root', parsed); // throws when below threshold
    verifyThreshold(parsed, 'root', parsed, 'root');
  }
});

test('signing the same key twice yields one signature', async () => {
  const a = generateSigner('ed25519');
  const b = generateSigner('ecdsa-p256');
  const md = await signMetadata(rootFor([a, b], 2), [a, a, b]);
  assert.equal(Object.keys(md.signatures).length, 2);
});

test('threshold verification refuses too few, duplicate, foreign, stale and garbage signatures', async () => {
  const [a, b, c] = [generateSigner('ed25519'), generateSigner('ecdsa-p256'), generateSigner('ed25519')];
  const root = rootFor([a, b], 2);
  const md = await signMetadata(root, [a, b]);
  verifyThreshold(md, 'root', md, 'root');

  verifyThreshold(md, 'root', reparse(md), 'root');

  const one = await signMetadata(root, [a]);
  throwsWithCode(() => verifyThreshold(md, 'root', one, 'root v1'), 'ERR_TUF', /^root v1: root was signed by 1\/2 keys/);

  // Two copies of one signature: the models refuse the file outright.
  const json = JSON.parse(dec.decode(encodeMetadata(md))) as {
    signed: Record<string, unknown>;
    signatures: Array<{ keyid: string; sig: string }>;
  };
  const dup = { ...json, signatures: [json.signatures[0]!, json.signatures[0]!] };
  throwsWithCode(() => parseMetadata(new TextEncoder().encode(JSON.stringify(dup)), 'root'), 'ERR_TUF', /multiple signatures/);

  // A signature by a key outside the role counts for nothing.
  const foreign = await signMetadata(root, [a, c]);
  throwsWithCode(() => verifyThreshold(md, 'root', foreign, 'root'), 'ERR_TUF', /signed by 1\/2/);

  // Signatures over other content (an edited version) or that are not hex verify nothing.
  const reencode = (v: unknown) => parseMetadata(new TextEncoder().encode(JSON.stringify(v)), 'root');
  const edited = reencode({ ...json, signed: { ...json.signed, version: 2 } });
  throwsWithCode(() => verifyThreshold(md, 'root', edited, 'root'), 'ERR_TUF', /signed by 0\/2/);
  const garbage = reencode({ ...json, signatures: json.signatures.map((s) => ({ ...s, sig: `zz${s.sig}` })) });
  throwsWithCode(() => verifyThreshold(md, 'root', garbage, 'root'), 'ERR_TUF', /signed by 0\/2/);
});

test('expiry format has second precision and a Z suffix', () => {
  assert.equal(formatExpires(new Date('2030-01-02T03:04:05.678Z')), '2030-01-02T03:04:05Z');
  throwsWithCode(() => formatExpires(new Date('nope')), 'ERR_INVALID_INPUT', /invalid expiry/);
});

test('parseMetadata refuses what is not well-formed metadata of the expected role', async () => {
  const enc = new TextEncoder();
  const a = generateSigner('ed25519');
  const md = await signMetadata(rootFor([a], 1), [a]);
  const json = JSON.parse(dec.decode(encodeMetadata(md))) as { signed: Record<string, unknown>; signatures: unknown[] };
  assert.equal(parseMetadata(encodeMetadata(md), 'root').signed.version, 1);
  throwsWithCode(() => parseMetadata(enc.encode('{'), 'root'), 'ERR_TUF', /not valid JSON/);
  throwsWithCode(() => parseMetadata(enc.encode('[]'), 'root'), 'ERR_TUF');
  throwsWithCode(() => parseMetadata(encodeMetadata(md), 'timestamp'), 'ERR_TUF', /expected 'timestamp'/);
  const bad = (signed: Record<string, unknown>) => enc.encode(JSON.stringify({ ...json, signed: { ...json.signed, ...signed } }));
  throwsWithCode(() => parseMetadata(bad({ version: 0 }), 'root'), 'ERR_TUF', /version/);
  throwsWithCode(() => parseMetadata(bad({ version: 1.5 }), 'root'), 'ERR_TUF', /version/);
  throwsWithCode(() => parseMetadata(bad({ expires: 'soon' }), 'root'), 'ERR_TUF', /expires/);
  throwsWithCode(() => parseMetadata(bad({ roles: {} }), 'root'), 'ERR_TUF', /top-level role/);
});
