// Bundle verification throughput: Waxseal's Verifier against sigstore-js (@sigstore/verify) over
// the same real bundles (the valid shared vectors both verify), same trusted roots, policies and
// thresholds, in one process. Each side parses the bundle JSON and verifies it; trust material
// is prepared once per trusted root for both. Measurement alternates short blocks of the two
// (the machine is shared) and reports the totals and the median per-round ratio.
//
// It also prints the crypto floor: the signature verifications a bundle needs at minimum
// (artifact signature, SET, checkpoint, leaf certificate, SCT, RFC 3161 CMS signature) times
// their cost measured here, i.e. what a verifier that did nothing else would reach.
import { canonicalize } from '../packages/core/src/jcs.ts';
import { toBase64, utf8, bytesEqual } from '../packages/core/src/bytes.ts';
import {
  verifySignature,
  sha256,
  defaultHash,
  digest,
  hashFromOid,
  publicKeyFromSpki,
  type PublicKeyInfo,
  type HashName,
} from '../packages/core/src/crypto.ts';
import { parseCertificate, signatureAlgorithmHash, certPublicKey } from '../packages/core/src/x509.ts';
import { parseSignedNote, noteKeyId } from '../packages/core/src/note.ts';
import { decodePem } from '../packages/core/src/pem.ts';
import { pae } from '../packages/core/src/dsse.ts';
import { parseBundleJson, type Bundle, type TrustedRoot } from '../packages/bundle/src/index.ts';
import { parseTimestampResponse } from '../packages/verify/src/index.ts';
import { embeddedScts, precertTbs, sctSignedData } from '../packages/verify/src/sct.ts';
import {
  vectorsPresent,
  VECTORS_DIR,
  loadCases,
  runCase,
  verifierOf,
  trustedRootOf,
  type VectorCase,
} from '../packages/verify/test/vectors/load.ts';
import { jsCanRun, jsRunner } from '../packages/verify/test/vectors/sigstore-js.ts';
import { fmt, median } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = 16;

if (!vectorsPresent()) {
  process.stdout.write(`verify bench: vectors not found at ${VECTORS_DIR}; skipped\n`);
  process.exit(0);
}

// ---------------------------------------------------------------- the workload

function envelopeOnly(c: VectorCase): boolean {
  return c.artifact !== undefined && 'digest' in c.artifact;
}

const cases = loadCases().filter((c) => {
  if (c.expected !== 'ok' || !jsCanRun(c)) return false;
  if (!runCase(c, envelopeOnly(c) ? { artifact: undefined } : {}).ok) return false;
  try {
    jsRunner(c).verify();
    return true;
  } catch {
    return false;
  }
});

const ours = cases.map((c) => {
  const v = verifierOf(c);
  const artifact = envelopeOnly(c) ? undefined : c.artifact;
  return () => void v.verify(parseBundleJson(c.bundleText), artifact, c.policy);
});
const theirs = cases.map((c) => {
  const r = jsRunner(c);
  return () => r.verify();
});

// ---------------------------------------------------------------- the crypto floor

interface SigCheck {
  what: string;
  key: PublicKeyInfo;
  data: Uint8Array;
  sig: Uint8Array;
  opts: { hash?: HashName; prehashed?: boolean };
}

function keyOf(root: TrustedRoot['tlogs'][number]): PublicKeyInfo | undefined {
  try {
    return root.publicKey.rawBytes ? publicKeyFromSpki(root.publicKey.rawBytes) : undefined;
  } catch {
    return undefined;
  }
}

/** The signature verifications a verifier cannot avoid for this bundle (chain links inside the trusted root excluded: cacheable). */
function signatureChecks(c: VectorCase, b: Bundle): SigCheck[] {
  const root = trustedRootOf(c);
  const out: SigCheck[] = [];
  const vm = b.verificationMaterial;
  let key: PublicKeyInfo;
  let leaf;
  if (vm.content.type === 'publicKey') {
    const k = c.policy.publicKey!.publicKey;
    key = publicKeyFromSpki(typeof k === 'string' ? decodePem(k).der : k);
  } else {
    leaf = parseCertificate(vm.content.type === 'certificate' ? vm.content.certificate : vm.content.certificates[0]!);
    key = certPublicKey(leaf);
  }
  const sigBytes = b.content.type === 'messageSignature' ? b.content.signature : b.content.envelope.signatures[0]!.sig;
  if (b.content.type === 'messageSignature') {
    const bytes = c.artifactBytes!;
    out.push(
      key.kind === 'ed25519'
        ? { what: 'artifact signature', key, data: digest('sha512', bytes), sig: sigBytes, opts: { prehashed: true } }
        : { what: 'artifact signature', key, data: bytes, sig: sigBytes, opts: { hash: defaultHash(key.kind) } },
    );
  } else {
    const env = b.content.envelope;
    out.push({
      what: 'DSSE signature',
      key,
      data: pae(env.payloadType, env.payload),
      sig: sigBytes,
      opts: { hash: defaultHash(key.kind) },
    });
  }
  for (const e of vm.tlogEntries) {
    const log = root.tlogs.find((l) => bytesEqual(l.logId, e.logId));
    const lk = log && keyOf(log);
    if (!log || !lk) continue;
    if (e.inclusionPromise) {
      const payload = canonicalize({
        body: toBase64(e.canonicalizedBody),
        integratedTime: e.integratedTime,
        logID: Buffer.from(e.logId).toString('hex'),
        logIndex: e.logIndex,
      });
      out.push({ what: 'SET', key: lk, data: utf8(payload), sig: e.inclusionPromise.signedEntryTimestamp, opts: {} });
    }
    if (e.inclusionProof) {
      const note = parseSignedNote(e.inclusionProof.checkpoint);
      const v2 = e.kindVersion.version === '0.0.2';
      const hint = v2 ? noteKeyId(new URL(log.baseUrl).hostname, lk).subarray(0, 4) : sha256(lk.spki).subarray(0, 4);
      const s = note.signatures.find((x) => bytesEqual(x.keyHint, hint));
      if (s) out.push({ what: 'checkpoint', key: lk, data: utf8(note.text), sig: s.signature, opts: {} });
    }
  }
  if (leaf) {
    for (const ca of root.certificateAuthorities) {
      const issuer = ca.certChain.map((d) => parseCertificate(d)).find((x) => bytesEqual(x.subjectRaw, leaf.issuerRaw));
      if (!issuer) continue;
      const hash = signatureAlgorithmHash(leaf.signatureAlgorithm);
      const ik = certPublicKey(issuer);
      if (!verifySignature(ik, leaf.tbs, leaf.signature, hash ? { hash } : {})) continue;
      out.push({ what: 'leaf certificate', key: ik, data: leaf.tbs, sig: leaf.signature, opts: hash ? { hash } : {} });
      if (c.options.ctlogThreshold !== 0) {
        const tbs = precertTbs(leaf);
        for (const sct of embeddedScts(leaf)) {
          const log = root.ctlogs.find((l) => bytesEqual(l.logId, sct.logId));
          const ck = log && keyOf(log);
          if (ck)
            out.push({
              what: 'SCT',
              key: ck,
              data: sctSignedData(sct, sha256(issuer.spki), tbs),
              sig: sct.signature,
              opts: { hash: 'sha256' },
            });
          break;
        }
      }
      break;
    }
  }
  for (const raw of vm.rfc3161Timestamps) {
    const t = parseTimestampResponse(raw);
    let imprintHash: HashName;
    try {
      imprintHash = hashFromOid(t.imprintAlgorithm);
    } catch {
      continue;
    }
    // A timestamp over other data is rejected by its imprint, before any signature check.
    if (!bytesEqual(t.hashedMessage, digest(imprintHash, sigBytes))) continue;
    for (const tsa of root.timestampAuthorities) {
      const tsaLeaf = parseCertificate(tsa.certChain[0]!);
      let hash: HashName | null;
      try {
        hash = signatureAlgorithmHash(t.signer.signatureAlgorithm);
      } catch {
        hash = 'sha256';
      }
      const tk = certPublicKey(tsaLeaf);
      const opts = hash ? { hash } : {};
      if (verifySignature(tk, t.signer.signedAttributes, t.signer.signature, opts)) {
        out.push({ what: 'RFC 3161 CMS signature', key: tk, data: t.signer.signedAttributes, sig: t.signer.signature, opts });
        break;
      }
    }
  }
  return out;
}

const costCache = new Map<string, number>();
/** Microseconds per verification of this exact check, measured here. */
function cost(s: SigCheck): number {
  const k = `${toBase64(sha256(s.key.spki))}/${toBase64(sha256(s.data))}/${toBase64(s.sig)}`;
  const hit = costCache.get(k);
  if (hit !== undefined) return hit;
  for (let i = 0; i < 5; i++) verifySignature(s.key, s.data, s.sig, s.opts);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 60 || n < 10) {
    verifySignature(s.key, s.data, s.sig, s.opts);
    n++;
  }
  const us = ((performance.now() - t0) / n) * 1000;
  costCache.set(k, us);
  return us;
}

let floorUs = 0;
let checks = 0;
const allChecks: SigCheck[] = [];
const byKind = new Map<string, { n: number; us: number }>();
for (const c of cases) {
  const b = parseBundleJson(c.bundleText);
  for (const s of signatureChecks(c, b)) {
    allChecks.push(s);
    const us = cost(s);
    floorUs += us;
    checks++;
    const label = `${s.what} (${s.key.kind}${s.key.rsaBits ? `-${s.key.rsaBits}` : ''})`;
    const e = byKind.get(label) ?? { n: 0, us: 0 };
    e.n++;
    e.us += us;
    byKind.set(label, e);
  }
}

function runFor(fns: (() => void)[], ms: number): { n: number; ms: number } {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (const f of fns) f();
    n += fns.length;
    t = performance.now();
  }
  return { n, ms: t - t0 };
}

// One pass of the floor: every unavoidable signature check of every bundle, once.
const floorPass = [
  () => {
    for (const s of allChecks) verifySignature(s.key, s.data, s.sig, s.opts);
  },
];

// Warm up (JIT, key caches, trust material).
runFor(ours, 500);
runFor(theirs, 500);
runFor(floorPass, 200);

// The machine is shared: alternate short blocks of the three and keep per-round ratios, whose
// median resists load changes better than totals do.
const per = (r: { n: number; ms: number }, bundlesPerUnit = 1) => ((r.n * bundlesPerUnit) / r.ms) * 1000;
let oursN = 0;
let oursMs = 0;
let theirsN = 0;
let theirsMs = 0;
const ratios: number[] = [];
const floorShare: number[] = [];
const jsShare: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = runFor(ours, (SECONDS * 1000) / ROUNDS);
  const b = runFor(theirs, (SECONDS * 1000) / ROUNDS);
  const f = runFor(floorPass, (SECONDS * 1000) / ROUNDS / 2);
  oursN += a.n;
  oursMs += a.ms;
  theirsN += b.n;
  theirsMs += b.ms;
  ratios.push(per(a) / per(b));
  floorShare.push(per(a) / per(f, cases.length));
  jsShare.push(per(b) / per(f, cases.length));
}
const oursRate = (oursN / oursMs) * 1000;
const theirsRate = (theirsN / theirsMs) * 1000;

// ---------------------------------------------------------------- report

const out = (s: string) => process.stdout.write(`${s}\n`);
out(
  `workload: ${cases.length} valid real bundles (Rekor v1 and v2, DSSE and message signatures, RFC 3161, keys), round-robin, ${SECONDS}s per verifier in ${ROUNDS} alternating blocks`,
);
out(`Waxseal Verifier                  ${fmt(oursRate).padStart(8)} verifications/s   (${fmt(1e6 / oursRate)} us/bundle)`);
out(`sigstore-js @sigstore/verify      ${fmt(theirsRate).padStart(8)} verifications/s   (${fmt(1e6 / theirsRate)} us/bundle)`);
out(
  `ratio Waxseal / sigstore-js       ${fmt(median(ratios), 2).padStart(8)}x (median of ${ROUNDS} rounds; ${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}; totals ${fmt(oursRate / theirsRate, 2)}x)   target >= 5x`,
);
out(
  `crypto floor: ${fmt(checks / cases.length, 2)} unavoidable signature verifications per bundle (chain links inside the trusted root excluded), about ${fmt(floorUs / cases.length)} us/bundle here:`,
);
for (const [k, v] of [...byKind].sort((a, b) => b[1].us - a[1].us))
  out(`    ${k.padEnd(40)} ${String(v.n).padStart(3)} checks, ${fmt(v.us / v.n).padStart(6)} us each`);
out(
  `Waxseal runs at ${fmt(100 * median(floorShare), 1)}% of the crypto floor's rate (sigstore-js ${fmt(100 * median(jsShare), 1)}%), medians of rounds measured side by side`,
);
