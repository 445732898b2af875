// Waxseal issue 15 item 5: every authority of the trusted root (transparency-log keys, TSAs, CAs,
// CT logs) counts only inside its validFor window at the time the evidence proves. Real bundles
// from the shared vectors, verified against their trusted root with one window edited; each
// refusal names the authority and its window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { parseBundleJson, type TimeRange, type TrustedRoot } from '../../bundle/src/index.ts';
import { Verifier } from '../src/index.ts';
import { parseTimestampResponse } from '../src/timestamp.ts';
import { vectorsPresent, SKIP_MESSAGE, loadCase, trustedRootOf, type VectorCase } from './vectors/load.ts';

const PAST: TimeRange = { start: new Date('2000-01-01T00:00:00Z'), end: new Date('2001-01-01T00:00:00Z') };
const FUTURE: TimeRange = { start: new Date('2099-01-01T00:00:00Z') };
const PAST_WINDOW = /2000-01-01T00:00:00\.000Z\.\.2001-01-01T00:00:00\.000Z/;
const FUTURE_WINDOW = /2099-01-01T00:00:00\.000Z\.\.\(no end\)/;
/** Windows that leave out every vector's time, with how the error shows each. */
const OUTSIDE = [
  [PAST, PAST_WINDOW],
  [FUTURE, FUTURE_WINDOW],
] as const;

/** Where each kind of authority keeps its validity window in a trusted root. */
const AUTHORITIES = {
  tlogs: (r: TrustedRoot) => r.tlogs.map((l) => l.publicKey),
  ctlogs: (r: TrustedRoot) => r.ctlogs.map((l) => l.publicKey),
  tsas: (r: TrustedRoot) => r.timestampAuthorities,
  cas: (r: TrustedRoot) => r.certificateAuthorities,
};

/** An edit of the trusted root: every authority of one kind valid only in `window`. */
const validIn = (kind: keyof typeof AUTHORITIES, window: TimeRange) => (r: TrustedRoot) => {
  for (const a of AUTHORITIES[kind](r)) a.validFor = window;
};

function verifyWith(c: VectorCase, edit: (r: TrustedRoot) => void): () => unknown {
  const root = structuredClone(trustedRootOf(c));
  edit(root);
  const verifier = new Verifier(root, c.options);
  return () => verifier.verify(parseBundleJson(c.bundleText), c.artifact, c.policy);
}

function genTimeOf(c: VectorCase): Date {
  return parseTimestampResponse(parseBundleJson(c.bundleText).verificationMaterial.rfc3161Timestamps[0]!).genTime;
}

if (!vectorsPresent()) {
  test('authority validity windows', { skip: SKIP_MESSAGE }, () => {});
} else {
  // Rekor v2 entries (no integrated time): the proven time is the RFC 3161 timestamp.
  const v2 = ['py-rekor-v2-hashedrekord-tsa-staging', 'java-rekor-v2-hashedrekord-tsa-staging', 'java-rekor-v2-dsse-production'].map(
    loadCase,
  );
  // Rekor v1 with a SET: the proven time is the integrated time.
  const v1 = loadCase('java-v0.3-hashedrekord-production');

  test('the unmodified vectors verify', () => {
    for (const c of [...v2, v1]) verifyWith(c, () => {})();
  });

  test('Rekor v2: a log key outside its window at the RFC 3161 time rejects the bundle', () => {
    for (const c of v2) {
      for (const [window, shown] of OUTSIDE) {
        const e = throwsWithCode(verifyWith(c, validIn('tlogs', window)), 'ERR_VERIFY_TLOG', { check: 'tlog.key' }, c.id);
        assert.match(e.message, /log key [0-9a-f]{64} of https:\/\/\S+ is valid /, c.id);
        assert.match(e.message, shown, c.id);
        assert.match(e.message, /entry time 20\d\d-\S+ \(tlog entry 0; rfc3161 time from https:\/\/\S+\)$/, c.id);
      }
    }
  });

  test('Rekor v2: the window is inclusive, to the millisecond of genTime', () => {
    const c = v2[0]!;
    const t = genTimeOf(c);
    const logUrl = 'https://log2025-alpha1.rekor.sigstage.dev';
    const setEnd = (end: Date) => (r: TrustedRoot) => {
      for (const log of r.tlogs) if (log.baseUrl === logUrl) log.publicKey.validFor = { start: new Date('2025-01-01T00:00:00Z'), end };
    };
    verifyWith(c, setEnd(t))();
    const e = throwsWithCode(verifyWith(c, setEnd(new Date(t.getTime() - 1))), 'ERR_VERIFY_TLOG', { check: 'tlog.key' });
    assert.ok(e.message.includes(`${logUrl} is valid 2025-01-01T00:00:00.000Z..${new Date(t.getTime() - 1).toISOString()}`), e.message);
    assert.ok(e.message.includes(t.toISOString()), e.message);
    // Another log's window does not matter.
    verifyWith(c, (r) => {
      for (const log of r.tlogs) if (log.baseUrl !== logUrl) log.publicKey.validFor = PAST;
    })();
  });

  test('Rekor v1: a log key outside its window at the SET-backed integrated time rejects the bundle', () => {
    for (const [window, shown] of OUTSIDE) {
      const e = throwsWithCode(verifyWith(v1, validIn('tlogs', window)), 'ERR_VERIFY_TLOG', { check: 'tlog.set' });
      assert.match(e.message, /log key [0-9a-f]{64} of https:\/\/rekor\.sigstore\.dev is valid /);
      assert.match(e.message, shown);
      assert.match(e.message, /integrated time 2023-10-11T14:28:04\.000Z/);
    }
  });

  test('a TSA outside its window at genTime does not count: the bundle has no signing time left', () => {
    for (const c of v2) {
      const e = throwsWithCode(verifyWith(c, validIn('tsas', PAST)), 'ERR_VERIFY_THRESHOLD', { check: 'threshold.timestamp' }, c.id);
      assert.match(e.message, /TSA https:\/\/\S+ is valid /, c.id);
      assert.match(e.message, PAST_WINDOW, c.id);
      assert.ok(e.message.includes(`genTime ${genTimeOf(c).toISOString()}`), e.message);
    }
  });

  test('a CA outside its window at the verified signing time rejects the certificate', () => {
    for (const c of [v1, v2[0]!]) {
      const e = throwsWithCode(verifyWith(c, validIn('cas', FUTURE)), 'ERR_VERIFY_CERT_CHAIN', { check: 'cert.chain' }, c.id);
      assert.match(e.message, /CA https:\/\/fulcio\.sig\S+ is valid /, c.id);
      assert.match(e.message, FUTURE_WINDOW, c.id);
      assert.match(e.message, /signing time 20\d\d-/, c.id);
    }
  });

  test('a CT log outside its window at the SCT time does not count (sct.ts)', () => {
    const e = throwsWithCode(verifyWith(v1, validIn('ctlogs', PAST)), 'ERR_VERIFY_SCT', { check: 'sct' });
    assert.match(e.message, /CT log https:\/\/ctfe\.sigstore\.dev\S* ?/);
  });
}
