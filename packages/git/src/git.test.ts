// gitsign's real signatures (../shared/vectors/gitsign, public-good Sigstore): offline-mode
// commits verify with the recorded identity; online-mode objects are refused for want of a time
// proof (and check out with that requirement waived); one-byte changes are refused naming the
// check. Plus the codec's exactness and the refusal of malformed CMS and policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { TAG, WaxsealError, bytesEqual, parseDer, seq, setOf, tlv, oid, ctx, OID } from '@waxseal/core';
import { Verifier, parseTrustedRootJson, type VerificationPolicy } from '@waxseal/verify';
import { hostileBytes, hostileText, throwsWithCode } from '@waxseal/testkit';
import { VECTORS_DIR } from '../../verify/test/vectors/load.ts';
import {
  armorSignature,
  assembleCmsSignature,
  dearmorSignature,
  decodeTransparencyLogEntry,
  encodeTransparencyLogEntry,
  evaluateMany,
  startEvaluators,
  evaluateObject,
  parseCmsSignature,
  parseCommit,
  parseSourcePolicy,
  parseTag,
  signerCertificate,
  verifyGitSignature,
} from './index.ts';

const DIR = join(VECTORS_DIR, 'gitsign');
const present = existsSync(join(DIR, 'README.md'));
const skip = present ? false : `gitsign vectors not found at ${DIR} (set WAXSEAL_VECTORS): skipping`;
const read = (f: string) => new Uint8Array(readFileSync(join(DIR, f)));
const BILLY: VerificationPolicy = {
  identities: [{ subjectAlternativeName: 'billy@chainguard.dev', issuer: 'https://accounts.google.com' }],
};

let verifier: Verifier | undefined;
const publicGood = () =>
  (verifier ??= new Verifier(parseTrustedRootJson(readFileSync(join(VECTORS_DIR, 'trusted-roots', 'public-good.json'), 'utf8')), {
    tlogThreshold: 1,
    ctlogThreshold: 1,
  }));

const OFFLINE = ['offline-mode-2023.commit', 'offline-mode-2023b.commit'];
const ONLINE = ['online-mode-2026.commit', 'online-mode-2026b.commit', 'online-mode-2022.tag'];
const objectOf = (f: string) => (f.endsWith('.tag') ? parseTag(read(f)) : parseCommit(read(f)));

test('offline-mode gitsign commits verify against the public-good root with the recorded identity', { skip }, () => {
  for (const f of OFFLINE) {
    const o = objectOf(f);
    assert.equal(o.format, 'x509');
    const v = verifyGitSignature(o.payload, o.signature!, publicGood(), BILLY);
    assert.equal(v.identity.san, 'billy@chainguard.dev', f);
    assert.equal(v.identity.issuer, 'https://accounts.google.com', f);
    const [t] = v.result!.timestamps;
    assert.equal(t!.source, 'tlog', `${f}: the log entry's integrated time is the signing time`);
    assert.ok(Math.abs(t!.time.getTime() - v.claimedSigningTime!.getTime()) < 60_000, f);
    assert.equal(v.result!.tlogEntries[0]!.inclusionProof, true, f);
    assert.equal(v.result!.ctLogs.length, 1, `${f}: the embedded SCT verified`);
  }
});

test('online-mode gitsign objects are refused offline for want of a time proof; waived, the signature checks out', { skip }, () => {
  for (const f of ONLINE) {
    const o = objectOf(f);
    throwsWithCode(() => verifyGitSignature(o.payload, o.signature!, publicGood(), BILLY), 'ERR_VERIFY_THRESHOLD', {
      check: 'threshold.timestamp',
      message: /no trusted time proof/,
    });
    const v = verifyGitSignature(o.payload, o.signature!, publicGood(), BILLY, { withoutTimeProofUnsafe: true });
    assert.equal(v.identity.san, 'billy@chainguard.dev', f);
    assert.equal(v.result, undefined, 'no verified time to report');
  }
});

/** Flips one byte of `b` at `i` (a copy). */
function flip(b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[i]! ^= 0x01;
  return c;
}

test('one-byte changes are refused, naming the check', { skip }, () => {
  const o = parseCommit(read(OFFLINE[0]!));
  const der = dearmorSignature(o.signature!);
  const cms = parseCmsSignature(der);
  const at = (part: Uint8Array) => {
    const i = Buffer.from(der).indexOf(Buffer.from(part));
    assert.ok(i > 0);
    return i;
  };
  // The commit message, and the tree line: content binding.
  const msg = o.payload.indexOf(0x4d); // 'M' of "Mon Jun 5"
  throwsWithCode(() => verifyGitSignature(flip(o.payload, msg), o.signature!, publicGood(), BILLY), 'ERR_VERIFY_ARTIFACT', {
    check: 'git.content-binding',
  });
  throwsWithCode(() => verifyGitSignature(flip(o.payload, 6), o.signature!, publicGood(), BILLY), 'ERR_VERIFY_ARTIFACT', {
    check: 'git.content-binding',
  });
  // The signature value (its last byte: still a well-formed DER signature).
  const sigEnd = at(cms.signer.signature) + cms.signer.signature.length - 1;
  throwsWithCode(() => verifyGitSignature(o.payload, flip(der, sigEnd), publicGood(), BILLY), 'ERR_VERIFY_SIGNATURE', {
    check: 'signature',
  });
  // The embedded log entry: its integrated time (SET), an inclusion-proof hash, the checkpoint.
  const entry = cms.signer.tlogEntries[0]!;
  const start = at(entry);
  const decoded = decodeTransparencyLogEntry(entry);
  for (const [what, offset, check] of [
    // field 4 (integratedTime) follows the kindVersion's "0.0.1": its tag byte, then the varint
    ['integrated time', Buffer.from(entry).indexOf(Buffer.from('0.0.1')) + 6, /^tlog\.set$/],
    ['proof hash', Buffer.from(entry).indexOf(Buffer.from(decoded.inclusionProof!.hashes[0]!)), /^tlog\./],
    ['checkpoint', Buffer.from(entry).indexOf(Buffer.from('rekor.sigstore.dev')) + 1, /^tlog\./],
  ] as const) {
    const e = throwsWithCode(
      () => verifyGitSignature(o.payload, flip(der, start + offset), publicGood(), BILLY),
      'ERR_VERIFY_TLOG',
      undefined,
      what,
    );
    assert.match(e.check!, check, `${what}: ${e.message}`);
  }
  // Another identity: the policy.
  throwsWithCode(
    () =>
      verifyGitSignature(o.payload, o.signature!, publicGood(), {
        identities: [{ subjectAlternativeName: 'mallory@example.com', issuer: 'https://accounts.google.com' }],
      }),
    'ERR_VERIFY_IDENTITY',
    { check: 'identity.san' },
  );
});

test("the codec is exact: parse then assemble gives back gitsign's bytes; the log entry proto round-trips", { skip }, () => {
  for (const f of [...OFFLINE, ...ONLINE]) {
    const o = objectOf(f);
    const der = dearmorSignature(o.signature!);
    const cms = parseCmsSignature(der);
    const s = cms.signer;
    const again = assembleCmsSignature({
      certificate: signerCertificate(cms),
      signedAttributes: s.signedAttributes,
      signature: s.signature,
      ...(s.timestampTokens[0] ? { timestamp: s.timestampTokens[0] } : {}),
      ...(s.tlogEntries[0] ? { tlogEntry: s.tlogEntries[0] } : {}),
    });
    assert.ok(bytesEqual(again, der), `${f}: reassembled CMS differs`);
    // git's armor is the same text gitsign wrote (modulo the header indentation of commits).
    assert.equal(armorSignature(der).trim(), o.signature!.trim(), f);
    for (const e of s.tlogEntries)
      assert.ok(bytesEqual(encodeTransparencyLogEntry(decodeTransparencyLogEntry(e)), e), `${f}: proto round trip`);
  }
});

/** The vector's SignedData with its signerInfos replaced. */
function withSigners(der: Uint8Array, signers: Uint8Array[]): Uint8Array {
  const sd = parseDer(der).children[1]!.children[0]!;
  const parts = sd.children.map((c) => c.raw);
  parts[parts.length - 1] = tlv(TAG.SET, Buffer.concat(signers));
  return seq(oid(OID.cmsSignedData), ctx(0, seq(...parts)));
}

test('malformed signatures are refused with one-line errors naming the check', { skip }, () => {
  const o = parseCommit(read(OFFLINE[0]!));
  const der = dearmorSignature(o.signature!);
  const si = parseDer(der).children[1]!.children[0]!.children.at(-1)!.children[0]!.raw;
  const v = publicGood();
  const cases: [string, Uint8Array | string, RegExp][] = [
    ['not armored', 'hello', /cms\.format/],
    ['an OpenPGP signature', '-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n', /OpenPGP/],
    ['not DER', armorSignature(new Uint8Array([0x30, 0x05, 1, 2])), /cms\.parse/],
    ['not SignedData', armorSignature(seq(oid(OID.cmsData), ctx(0, seq()))), /not SignedData/],
    ['two signers', armorSignature(withSigners(der, [si, si])), /2 signers/],
    ['no signer', armorSignature(withSigners(der, [])), /0 signers/],
  ];
  for (const [what, sig, message] of cases) {
    const e = throwsWithCode(() => verifyGitSignature(o.payload, sig, v, BILLY), 'ERR_VERIFY_SIGNATURE', { message }, what);
    assert.ok(e.check?.startsWith('cms.'), `${what}: check ${e.check}`);
    assert.doesNotMatch(e.message, /\n/, `${what}: one line`);
  }
  assert.equal(setOf().length, 2);
});

test("source policies: Chainguard's shape is read; unknown fields, invalid regexps and bad keys are refused naming the field", () => {
  const p = parseSourcePolicy(`spec:
  authorities:
  - keyless:
      identities:
      - issuerRegExp: ".*"
        subjectRegExp: ".*"
  - key:
      kms: https://github.com/web-flow.gpg
`);
  assert.equal(p.authorities.length, 2);
  assert.deepEqual(p.authorities[0], {
    type: 'keyless',
    name: 'authorities[0]',
    identities: [{ issuerRegExp: '.*', subjectAlternativeNameRegExp: '.*' }],
  });
  assert.deepEqual(p.authorities[1], {
    type: 'key',
    name: 'authorities[1]',
    source: { type: 'url', url: 'https://github.com/web-flow.gpg' },
  });
  const bad: [string, RegExp][] = [
    [
      'spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: a\n        subjectRegExp: "("\n',
      /identities\[0\]\.subjectRegExp: invalid RE2/,
    ],
    [
      'spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: a\n        subjct: b\n',
      /identities\[0\]\.subjct: unknown field/,
    ],
    ['spec:\n  authority: []\n', /spec\.authority: unknown field/],
    ['spec:\n  authorities:\n  - key:\n      kms: http://example.com/k.gpg\n', /only https/],
    ['spec:\n  authorities:\n  - key:\n      data: hello\n', /not an armored OpenPGP public key/],
    ['spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: a\n', /exactly one of subject, subjectRegExp/],
    ['spec:\n  authorities: []\n', /non-empty list/],
    ['spec: [\n', /not valid YAML/],
    [
      'spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: a\n        subject: b\n    key:\n      kms: https://x\n',
      /exactly one of keyless, key/,
    ],
  ];
  for (const [text, message] of bad) throwsWithCode(() => parseSourcePolicy(text), 'ERR_CONFIG', { message, check: 'policy' }, text);
});

test('commit and tag parsing splits exactly what git signs', { skip }, () => {
  const c = parseCommit(read(OFFLINE[0]!));
  const text = Buffer.from(c.payload).toString('latin1');
  assert.doesNotMatch(text, /gpgsig|SIGNED MESSAGE/);
  assert.match(
    text,
    /^tree [0-9a-f]{40}\nparent [0-9a-f]{40}\nauthor Billy Lynch <billy@chainguard\.dev> 1685981477 -0400\ncommitter .*\n\nMon Jun {2}5/,
  );
  assert.equal(c.author?.email, 'billy@chainguard.dev');
  const t = parseTag(read('online-mode-2022.tag'));
  assert.equal(Buffer.from(t.payload).toString('latin1').endsWith('\nv0.1.0\n'), true);
  assert.ok(t.signature!.startsWith('-----BEGIN SIGNED MESSAGE-----'));
  assert.equal(parseCommit(new TextEncoder().encode('tree a\nauthor A <a@b> 1 +0000\n\nmsg\n')).signature, undefined);
});

test('hostile signature, log-entry and object bytes fail with a WaxsealError, never anything else', { skip }, () => {
  const objects = [...OFFLINE, ...ONLINE].map(objectOf);
  const ders = objects.map((o) => dearmorSignature(o.signature!));
  const entries = ders.flatMap((d) => parseCmsSignature(d).signer.tlogEntries);
  const o = objects[0]!;
  const onlyWaxseal = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof WaxsealError)) throw e;
    }
  };
  fc.assert(
    fc.property(hostileBytes(ders, 512), (der) => onlyWaxseal(() => verifyGitSignature(o.payload, der, publicGood(), BILLY))),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(hostileBytes(entries), (e) => onlyWaxseal(() => decodeTransparencyLogEntry(e))),
    { numRuns: 300 },
  );
  const raws = [...OFFLINE, 'online-mode-2026.commit'].map(read);
  fc.assert(
    fc.property(hostileBytes(raws, 512), (raw) =>
      onlyWaxseal(() => {
        const c = parseCommit(raw);
        if (c.signature) verifyGitSignature(c.payload, c.signature, publicGood(), BILLY);
      }),
    ),
    { numRuns: 200 },
  );
});

test('evaluateMany gives what evaluateObject gives, in order, with worker threads and without', { skip }, async () => {
  const policy = parseSourcePolicy(
    'spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: https://accounts.google.com\n        subject: billy@chainguard.dev\n',
  );
  const ctx = { policy, verifier: publicGood(), keys: [] };
  const good = OFFLINE.map((f) => read(f));
  // Good ones, a changed message, an unsigned commit, bytes that are no commit, an online-mode one.
  const raws = [
    ...good,
    flip(good[0]!, good[0]!.length - 3),
    new TextEncoder().encode(
      'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nunsigned\n',
    ),
    new TextEncoder().encode('not a commit'),
    read(ONLINE[0]!),
    ...good,
  ];
  const objects = raws.map((raw, i) => ({ id: `id${i}`, type: 'commit' as const, raw }));
  const expected = [];
  for (const o of objects) expected.push(await evaluateObject(o.id, o.type, o.raw, ctx));
  assert.deepEqual(
    expected.map((v) => v.ok),
    [true, true, false, false, false, false, true, true],
  );
  async function* stream() {
    for (const o of objects) {
      await new Promise((r) => setTimeout(r, 1));
      yield o;
    }
  }
  for (const workers of [0, 1, 2]) {
    const got = await evaluateMany(stream(), objects.length, ctx, { workers, batch: 2 });
    assert.deepEqual(got, expected, `${workers} worker(s)`);
  }
  // Threads started ahead (startEvaluators), handed over once they said they are ready: the
  // path where their ready message came before evaluateMany listened.
  const early = startEvaluators(2);
  while (!early.threads.every((t) => t.ready)) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await evaluateMany(stream(), objects.length, ctx, { workers: early, batch: 2 }), expected, 'threads ready before');
  // And handed over at once, before they are ready.
  const fresh = startEvaluators(1);
  assert.deepEqual(await evaluateMany(stream(), objects.length, ctx, { workers: fresh, batch: 2 }), expected, 'threads not yet ready');
  // A stream that fails fails the call.
  async function* broken() {
    yield objects[0]!;
    throw new Error('git died');
  }
  await assert.rejects(evaluateMany(broken(), 2, ctx, { workers: 1 }), /git died/);
});

test("property: dearmorSignature's fast path reads what the armor's regular expression reads, and refuses what it refuses", () => {
  // The armor as read before the fast path: the regular expression, then strict base64.
  const reference = (text: string): string => {
    const m = /^-----BEGIN SIGNED MESSAGE-----\r?\n([A-Za-z0-9+/=\s]*?)-----END SIGNED MESSAGE-----\s*$/.exec(text.trim());
    const body = m?.[1]?.replace(/\s+/g, '');
    if (body === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 === 1) return 'refused';
    return Buffer.from(body, 'base64').toString('hex');
  };
  const attempt = (text: string): string => {
    try {
      return Buffer.from(dearmorSignature(text)).toString('hex');
    } catch (e) {
      assert.ok(e instanceof WaxsealError, String(e));
      return 'refused';
    }
  };
  // Armors with characters inserted, replaced or dropped, in the body, the labels or around them.
  const armors = fc
    .sample(fc.uint8Array({ minLength: 1, maxLength: 120 }), { numRuns: 20, seed: 9 })
    .map((der) => armorSignature(new Uint8Array([TAG.SEQUENCE, ...der])));
  const edited = hostileText(armors, ['_', '*', '\u00a0', '\r\n', '-----']);
  fc.assert(
    fc.property(edited, (text) => assert.equal(attempt(text), reference(text), JSON.stringify(text))),
    { numRuns: 3000 },
  );
});
