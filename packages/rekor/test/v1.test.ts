// Rekor v1 REST API: entry creation for every supported type, SETs, proofs, lookups, search.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { respondsWithStatus, throwsWithCode } from '@waxseal/testkit';
import { createHash, sign, verify as nodeVerify, createPublicKey } from 'node:crypto';
import { leafHash, verifyInclusion, verifyConsistency } from '../../core/src/merkle.ts';
import { canonicalBytes } from '../../core/src/jcs.ts';
import { publicKeyFromSpki, sha256 as coreSha256 } from '../../core/src/crypto.ts';
import { toHex } from '../../core/src/bytes.ts';
import { verifyCheckpointNoteV1 } from '../src/personality.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import {
  HOST,
  startTestLog,
  post,
  get,
  p256Key,
  hashedRekordV1,
  hashedRekordV2,
  b64,
  sha256,
  signData,
  dsseEnvelope,
  testCa,
  certPem,
} from './helpers.ts';

const TREE = '1193050959916656506';
const TREE_HEX = '108e9186e8c5677a';

/** Unix seconds when this file started (integratedTime is floored to whole seconds). */
const STARTED = Math.floor(Date.now() / 1000);

function checkLogEntry(res: { json: any; headers: Headers }, logSpki: Uint8Array): { entryId: string; e: any } {
  const [entryId, e] = Object.entries(res.json)[0] as [string, any];
  assert.ok(entryId.startsWith(TREE_HEX) && /^[0-9a-f]{80}$/.test(entryId));
  const body = Buffer.from(e.body, 'base64');
  assert.equal(entryId.slice(16), toHex(leafHash(body)));
  assert.equal(e.logID, toHex(coreSha256(logSpki)));
  // SET = signature over JCS {body, integratedTime, logID, logIndex}.
  const payload = canonicalBytes({ body: e.body, integratedTime: e.integratedTime, logID: e.logID, logIndex: e.logIndex });
  const key = createPublicKey({ key: Buffer.from(logSpki), format: 'der', type: 'spki' });
  assert.ok(
    nodeVerify(
      key.asymmetricKeyType === 'ed25519' ? null : 'sha256',
      payload,
      key,
      Buffer.from(e.verification.signedEntryTimestamp, 'base64'),
    ),
    'SET verifies',
  );
  const p = e.verification.inclusionProof;
  const cp = verifyCheckpointNoteV1(p.checkpoint, HOST, TREE, publicKeyFromSpki(logSpki));
  assert.equal(cp.size, p.treeSize);
  assert.equal(toHex(cp.rootHash), p.rootHash);
  assert.ok(
    verifyInclusion(
      p.logIndex,
      p.treeSize,
      leafHash(body),
      p.hashes.map((h: string) => Buffer.from(h, 'hex')),
      cp.rootHash,
    ),
  );
  // Committed while this file ran: no later than now, no earlier than the file started.
  assert.ok(e.integratedTime >= STARTED && e.integratedTime <= Math.ceil(Date.now() / 1000), `integratedTime ${e.integratedTime}`);
  return { entryId, e };
}

test('v1 hashedrekord: LogEntry with SET and proof, ETag/Location, 409 on duplicates, lookups', async () => {
  const log = await startTestLog({ signer: generateSigner('ecdsa-p256') });
  try {
    const spki = log.service.log.signer.publicKeySpki;
    const k = p256Key();
    const proposed = hashedRekordV1(k, 'hello v1');
    const res = await post(`${log.url}/api/v1/log/entries`, proposed);
    assert.equal(res.status, 201, res.text);
    const { entryId, e } = checkLogEntry(res, spki);
    assert.equal(res.headers.get('etag'), entryId);
    assert.equal(res.headers.get('location'), `/api/v1/log/entries/${entryId}`);
    const body = JSON.parse(Buffer.from(e.body, 'base64').toString());
    assert.deepEqual(body, {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: toHex(sha256('hello v1')) } },
        signature: { content: proposed.spec.signature.content, publicKey: { content: b64(k.pem) } },
      },
    });

    const dup = await post(`${log.url}/api/v1/log/entries`, proposed);
    await respondsWithStatus(dup, 409, 409, new RegExp(`equivalent entry already exists in the transparency log with UUID ${entryId}`));
    assert.equal(dup.headers.get('location'), `/api/v1/log/entries/${entryId}`);

    for (const id of [entryId, entryId.slice(16), entryId.toUpperCase()]) {
      const g = await get(`${log.url}/api/v1/log/entries/${id}`);
      assert.equal(g.status, 200, id);
      assert.equal(Object.values(g.json as Record<string, any>)[0].body, e.body);
    }
    await respondsWithStatus(get(`${log.url}/api/v1/log/entries/${'ab'.repeat(32)}`), 404, 404, /entry not found/);
    await respondsWithStatus(get(`${log.url}/api/v1/log/entries/${'0'.repeat(16)}${entryId.slice(16)}`), 404, 404, /entry not found/);
    await respondsWithStatus(get(`${log.url}/api/v1/log/entries/nothex`), 400, 400, /must be 64 or 80 hexadecimal characters/);
    const byIndex = await get(`${log.url}/api/v1/log/entries?logIndex=0`);
    assert.equal(byIndex.status, 200);
    checkLogEntry(byIndex, spki);
    await respondsWithStatus(get(`${log.url}/api/v1/log/entries?logIndex=5`), 404, 404, /no entry at index 5/);
    await respondsWithStatus(get(`${log.url}/api/v1/log/entries?logIndex=-1`), 400, 400, /logIndex must be a non-negative integer/);

    // A v2 entry is a leaf of the same tree and readable through v1.
    const v2 = await post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, 'v2 in the same tree'));
    assert.equal(v2.status, 201);
    assert.equal(v2.json.logIndex, '1');
    const v2ViaV1 = await get(`${log.url}/api/v1/log/entries?logIndex=1`);
    assert.equal(Object.values(v2ViaV1.json as Record<string, any>)[0].body, v2.json.canonicalizedBody);

    const r = await post(`${log.url}/api/v1/log/entries/retrieve`, { logIndexes: [0, 1, 99], entryUUIDs: [entryId] });
    assert.equal(r.status, 200);
    assert.equal(r.json.length, 3);
    const byProposed = await post(`${log.url}/api/v1/log/entries/retrieve`, { entries: [proposed] });
    assert.equal(Object.keys(byProposed.json[0])[0], entryId);
    await respondsWithStatus(
      post(`${log.url}/api/v1/log/entries/retrieve`, { logIndexes: Array(11).fill(0) }),
      400,
      400,
      /logIndexes must hold 1 to 10 items/,
    );
    await respondsWithStatus(
      post(`${log.url}/api/v1/log/entries/retrieve`, {}),
      400,
      400,
      /one of entryUUIDs, logIndexes or entries is required/,
    );

    const info = await get(`${log.url}/api/v1/log`);
    assert.equal(info.json.treeSize, 2);
    assert.equal(info.json.treeID, TREE);
    const sth = verifyCheckpointNoteV1(info.json.signedTreeHead, HOST, TREE, publicKeyFromSpki(spki));
    assert.equal(toHex(sth.rootHash), info.json.rootHash);
    const pk = await get(`${log.url}/api/v1/log/publicKey`);
    assert.equal(pk.headers.get('content-type'), 'application/x-pem-file');
    assert.equal(pk.text, log.service.publicKeyPem);
    await respondsWithStatus(get(`${log.url}/api/v1/log?treeID=5`), 404, 404, /unknown tree ID 5/);
  } finally {
    await log.close();
  }
});

test('v1 consistency proofs verify between every pair of sizes', async () => {
  const log = await startTestLog();
  try {
    const k = p256Key();
    const roots: string[] = [];
    for (let i = 0; i < 6; i++) {
      assert.equal((await post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, `consistency ${i}`))).status, 201);
      roots.push((await get(`${log.url}/api/v1/log`)).json.rootHash);
    }
    for (let m = 1; m <= 6; m++) {
      for (let n = m; n <= 6; n++) {
        const p = await get(`${log.url}/api/v1/log/proof?firstSize=${m}&lastSize=${n}`);
        assert.equal(p.status, 200);
        assert.equal(p.json.rootHash, roots[n - 1]);
        assert.ok(
          verifyConsistency(
            m,
            n,
            Buffer.from(roots[m - 1]!, 'hex'),
            Buffer.from(roots[n - 1]!, 'hex'),
            p.json.hashes.map((h: string) => Buffer.from(h, 'hex')),
          ),
          `${m}->${n}`,
        );
      }
    }
    for (const [bad, why] of [
      ['firstSize=0&lastSize=2', /firstSize must be between 1 and lastSize/],
      ['firstSize=3&lastSize=2', /firstSize must be between 1 and lastSize/],
      ['lastSize=7', /lastSize 7 is beyond the tree size 6/],
      ['firstSize=1', /lastSize is required/],
      ['firstSize=x&lastSize=2', /firstSize must be a non-negative integer/],
    ] as const)
      await respondsWithStatus(get(`${log.url}/api/v1/log/proof?${bad}`), 400, 400, why, bad);
  } finally {
    await log.close();
  }
});

test('v1 dsse, intoto and rekord x509 entries, certificate chains and the CA policy', async () => {
  const ca = await testCa();
  const log = await startTestLog({ trustedCas: [certPem(ca.root)] });
  try {
    const spki = log.service.log.signer.publicKeySpki;
    const k = p256Key();
    const leaf = await ca.leaf(k, 'Builder@Example.com');
    const statement = JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'a.tgz', digest: { sha256: 'aa'.repeat(32) } }],
      predicateType: 'x',
      predicate: {},
    });
    const env = dsseEnvelope(k, statement);
    const dsse = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: { proposedContent: { envelope: JSON.stringify(env), verifiers: [b64(certPem(leaf))] } },
    };
    const r1 = await post(`${log.url}/api/v1/log/entries`, dsse);
    assert.equal(r1.status, 201, r1.text);
    const { e } = checkLogEntry(r1, spki);
    const body = JSON.parse(Buffer.from(e.body, 'base64').toString());
    assert.deepEqual(Object.keys(body.spec).sort(), ['envelopeHash', 'payloadHash', 'signatures']);
    assert.equal(body.spec.payloadHash.value, toHex(sha256(statement)));
    assert.equal(body.spec.envelopeHash.value, toHex(sha256(JSON.stringify(env))));
    assert.equal(body.spec.signatures[0].signature, env.signatures[0]!.sig);

    // intoto 0.0.2, double-base64 as sigstore-js builds it.
    const intoto = {
      apiVersion: '0.0.2',
      kind: 'intoto',
      spec: {
        content: {
          envelope: {
            payloadType: env.payloadType,
            payload: b64(env.payload),
            signatures: [{ sig: b64(env.signatures[0]!.sig), publicKey: b64(certPem(leaf)) }],
          },
          hash: { algorithm: 'sha256', value: 'cd'.repeat(32) },
          payloadHash: { algorithm: 'sha256', value: toHex(sha256(statement)) },
        },
      },
    };
    const r2 = await post(`${log.url}/api/v1/log/entries`, intoto);
    assert.equal(r2.status, 201, r2.text);
    const ib = JSON.parse(Buffer.from(checkLogEntry(r2, spki).e.body, 'base64').toString());
    assert.equal(ib.spec.content.envelope.payload, undefined, 'payload is not stored');
    assert.equal(ib.spec.content.envelope.signatures[0].sig, b64(env.signatures[0]!.sig));

    // rekord with an x509 signature over the inline artifact.
    const artifact = Buffer.from('rekord artifact bytes');
    const rekord = {
      apiVersion: '0.0.1',
      kind: 'rekord',
      spec: {
        signature: { format: 'x509', content: b64(signData(k, artifact)), publicKey: { content: b64(certPem(leaf)) } },
        data: { content: b64(artifact) },
      },
    };
    const r3 = await post(`${log.url}/api/v1/log/entries`, rekord);
    assert.equal(r3.status, 201, r3.text);
    const rb = JSON.parse(Buffer.from(checkLogEntry(r3, spki).e.body, 'base64').toString());
    assert.deepEqual(rb.spec.data, { hash: { algorithm: 'sha256', value: toHex(sha256(artifact)) } });

    // Search: by e-mail (case-insensitive), artifact hash, public key, subject; and/or.
    const byEmail = await post(`${log.url}/api/v1/index/retrieve`, { email: 'builder@example.com' });
    assert.equal(byEmail.json.length, 3);
    const byHash = await post(`${log.url}/api/v1/index/retrieve`, { hash: toHex(sha256(artifact)) });
    assert.equal(byHash.json.length, 1);
    const bySubjectDigest = await post(`${log.url}/api/v1/index/retrieve`, { hash: `sha256:${'aa'.repeat(32)}` });
    assert.equal(bySubjectDigest.json.length, 2, 'in-toto subject digests are indexed');
    const byKey = await post(`${log.url}/api/v1/index/retrieve`, { publicKey: { format: 'x509', content: b64(certPem(leaf)) } });
    assert.equal(byKey.json.length, 3);
    const and = await post(`${log.url}/api/v1/index/retrieve`, {
      email: 'builder@example.com',
      hash: toHex(sha256(artifact)),
      operator: 'and',
    });
    assert.deepEqual(and.json, byHash.json);
    const or = await post(`${log.url}/api/v1/index/retrieve`, {
      subject: 'nobody@example.com',
      hash: toHex(sha256(artifact)),
      operator: 'or',
    });
    assert.deepEqual(or.json, byHash.json);
    const badHash = /hash must be a sha1, sha256, sha384 or sha512 hex digest/;
    for (const [bad, why] of [
      [{}, /give at least one of hash, email, subject or publicKey/],
      [{ hash: 'zz' }, badHash],
      [{ hash: 'sha256:abcd' }, badHash],
      [{ email: 'not-an-email' }, /email is not a valid address/],
      [{ publicKey: { format: 'tuf', content: 'eA==' } }, /unsupported public key format "tuf"/],
      [{ operator: 'xor', email: 'a@b.c' }, /operator must be "and" or "or"/],
    ] as const)
      await respondsWithStatus(post(`${log.url}/api/v1/index/retrieve`, bad), 400, 400, why, JSON.stringify(bad));

    // CA policy: a certificate from another CA is refused; a bare key is still accepted.
    const rogue = await testCa('Rogue CA');
    const rogueLeaf = await rogue.leaf(k, 'builder@example.com');
    await respondsWithStatus(post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'rogue', certPem(rogueLeaf))), 400, 400, /trusted/);
    assert.equal((await post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'bare key'))).status, 201);
    await respondsWithStatus(
      post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, 'rogue v2', { x509Certificate: rogueLeaf.der })),
      400,
      3,
      /does not chain to a CA trusted by this log/,
    );
    // An uploaded chain (leaf + root) is checked link by link.
    const chain = await post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'chained', certPem(leaf) + certPem(ca.root)));
    assert.equal(chain.status, 201, chain.text);
    await respondsWithStatus(
      post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'broken chain', certPem(leaf) + certPem(rogue.root))),
      400,
      400,
      /certificate 0 of the chain is not issued by certificate 1/,
    );
  } finally {
    await log.close();
  }
});

test('v1 rejects malformed entries, wrong signatures and unknown types; the tree does not change', async () => {
  const log = await startTestLog({ policy: { maxArtifactBytes: 1024 } });
  try {
    const k = p256Key();
    const other = p256Key();
    const good = hashedRekordV1(k, 'good');
    const wrongKey = hashedRekordV1(k, 'good', other.pem);
    const wrongHash = structuredClone(good);
    wrongHash.spec.data.hash.value = toHex(sha256('other'));
    const shortHash = structuredClone(good);
    shortHash.spec.data.hash.value = 'abcd';
    const ed = generateSigner('ed25519');
    const edPem = `-----BEGIN PUBLIC KEY-----\n${b64(ed.publicKeySpki)}\n-----END PUBLIC KEY-----\n`;
    const edSha256 = {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: toHex(sha256('x')) } },
        signature: { content: b64(await ed.sign(sha256('x'))), publicKey: { content: b64(edPem) } },
      },
    };
    const bigArtifact = Buffer.alloc(2048, 1);
    const bigRekord = {
      apiVersion: '0.0.1',
      kind: 'rekord',
      spec: {
        signature: { format: 'x509', content: b64(signData(k, bigArtifact)), publicKey: { content: b64(k.pem) } },
        data: { content: b64(bigArtifact) },
      },
    };
    const env = dsseEnvelope(k, 'payload');
    const dsseWrongVerifier = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: { proposedContent: { envelope: JSON.stringify(env), verifiers: [b64(other.pem)] } },
    };
    const tooManySigs = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        proposedContent: { envelope: JSON.stringify({ ...env, signatures: Array(11).fill(env.signatures[0]) }), verifiers: [b64(k.pem)] },
      },
    };
    // Each refused with 400 {code: 400, message} for the reason given.
    const cases: [string, unknown, RegExp][] = [
      ['wrong key', wrongKey, /signature does not verify over the digest/],
      ['wrong digest', wrongHash, /signature does not verify over the digest/],
      ['short digest', shortHash, /invalid value for hash/],
      ['pure Ed25519 over a SHA-256 digest', edSha256, /signature does not verify over the digest/],
      ['unknown kind', { ...good, kind: 'helm' }, /unsupported entry type "helm" version "0\.0\.1"/],
      ['unknown version', { ...good, apiVersion: '0.0.9' }, /unsupported entry type "hashedrekord" version "0\.0\.9"/],
      ['intoto 0.0.1 unsupported', { ...good, kind: 'intoto', apiVersion: '0.0.1' }, /unsupported entry type "intoto" version "0\.0\.1"/],
      ['missing spec', { kind: 'hashedrekord', apiVersion: '0.0.1' }, /spec is missing or not an object/],
      ['garbage spec', { kind: 'hashedrekord', apiVersion: '0.0.1', spec: 'x' }, /spec is missing or not an object/],
      [
        'missing signature',
        { kind: 'hashedrekord', apiVersion: '0.0.1', spec: { data: good.spec.data } },
        /signature is missing or not an object/,
      ],
      [
        'not PEM',
        {
          kind: 'hashedrekord',
          apiVersion: '0.0.1',
          spec: { ...good.spec, signature: { ...good.spec.signature, publicKey: { content: b64('nope') } } },
        },
        /invalid public key: failure decoding PEM/,
      ],
      ['artifact too large', bigRekord, /artifact exceeds 1024 bytes/],
      ['dsse signed by another key', dsseWrongVerifier, /all signatures must have a key that verifies it/],
      ['dsse with too many signatures', tooManySigs, /too many signatures: 11, max allowed: 10/],
      [
        'rekord url',
        {
          apiVersion: '0.0.1',
          kind: 'rekord',
          spec: {
            signature: { format: 'x509', content: 'AA==', publicKey: { content: b64(k.pem) } },
            data: { url: 'http://example.com/x' },
          },
        },
        /fetching content by URL is not supported/,
      ],
      [
        'rekord unknown format',
        {
          apiVersion: '0.0.1',
          kind: 'rekord',
          spec: { signature: { format: 'tuf', content: 'AA==', publicKey: { content: 'AA==' } }, data: { content: 'AA==' } },
        },
        /unsupported signature format "tuf"/,
      ],
      ['array', [good], /proposed entry is missing or not an object/],
    ];
    for (const [name, body, why] of cases) await respondsWithStatus(post(`${log.url}/api/v1/log/entries`, body), 400, 400, why, name);
    await respondsWithStatus(post(`${log.url}/api/v1/log/entries`, 'not json'), 400, 400, /not valid JSON/);
    assert.equal((await get(`${log.url}/api/v1/log`)).json.treeSize, 0);
    assert.equal((await post(`${log.url}/api/v1/log/entries`, good)).status, 201);
  } finally {
    await log.close();
  }
});

test('a frozen log answers 405 to writes and still serves reads', async () => {
  const log = await startTestLog({ frozen: true });
  try {
    const k = p256Key();
    const r = await post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, 'x'));
    await respondsWithStatus(r, 405, 12, /frozen/); // v2: gRPC Unimplemented
    await respondsWithStatus(post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'x')), 405, 405, /frozen/);
    assert.equal((await get(`${log.url}/checkpoint`)).status, 200);
  } finally {
    await log.close();
  }
});

test('TrustedRoot tlog entries for the v1 and v2 views', async () => {
  const log = await startTestLog();
  try {
    const t = log.service.trustedRootTlogs({ v1BaseUrl: 'https://log.waxseal.test', v2BaseUrl: 'https://log.waxseal.test/v2' });
    const spki = log.service.log.signer.publicKeySpki;
    assert.equal(t.v1.publicKey.rawBytes, b64(spki));
    assert.equal(t.v1.publicKey.keyDetails, 'PKIX_ED25519');
    assert.match(t.v1.publicKey.validFor.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(t.v1.logId.keyId, b64(coreSha256(spki)));
    const raw = spki.subarray(12);
    assert.equal(
      t.v2.logId.keyId,
      b64(
        createHash('sha256')
          .update(Buffer.concat([Buffer.from(`${HOST}\n`), Buffer.of(1), raw]))
          .digest(),
      ),
    );
    throwsWithCode(() => log.service.trustedRootTlogs({ v1BaseUrl: 'https://other.example' }), 'ERR_CONFIG', /must equal the log hostname/);
    void sign;
  } finally {
    await log.close();
  }
});
