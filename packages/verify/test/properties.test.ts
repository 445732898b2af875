// Property tests: the parsers and the verifier fail only with WaxsealError on any input
// (arbitrary JSON, arbitrary bytes, and real documents with random edits), and documents
// round-trip through parse -> serialize -> parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertWaxsealError, parseOrRefuse } from '@waxseal/testkit';
import {
  parseBundle,
  parseBundleJson,
  serializeBundle,
  parseTrustedRoot,
  serializeTrustedRoot,
  parseSigningConfig,
  serializeSigningConfig,
  parseClientTrustConfig,
  selectServices,
  BUNDLE_MEDIA_TYPE_V01,
  BUNDLE_MEDIA_TYPE_V02,
  BUNDLE_MEDIA_TYPE_V03,
  SIGNING_CONFIG_MEDIA_TYPE_V02,
  type Bundle,
  type SigningConfig,
  type Service,
  type TransparencyLogEntry,
} from '../../bundle/src/index.ts';
import { Verifier, parseTimestampResponse } from '../src/index.ts';
import { vectorsPresent, loadCases, trustedRootOf, type VectorCase } from './vectors/load.ts';

/** Runs `f` on hostile input: a result or a WaxsealError, never another exception. */
const onlyWaxsealErrors = (f: () => unknown): void => void parseOrRefuse(f);

// ---------------------------------------------------------------- random edits of JSON documents

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...prefix, k], out);
  return out;
}

type Edit = { kind: 'delete' } | { kind: 'replace'; value: Json } | { kind: 'flipChar'; at: number } | { kind: 'snake' };

function applyEdit(doc: Json, path: (string | number)[], edit: Edit): Json {
  const copy = structuredClone(doc);
  if (path.length === 0) return edit.kind === 'replace' ? edit.value : copy;
  let parent: Json = copy;
  for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k]!;
  const last = path[path.length - 1]!;
  const container = parent as Record<string | number, Json>;
  const cur = container[last];
  switch (edit.kind) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete container[last];
      break;
    case 'replace':
      container[last] = edit.value;
      break;
    case 'flipChar':
      if (typeof cur === 'string' && cur.length > 0) {
        const i = edit.at % cur.length;
        container[last] = cur.slice(0, i) + String.fromCharCode(cur.charCodeAt(i) ^ 1) + cur.slice(i + 1);
      } else if (typeof cur === 'number') container[last] = cur + 1;
      break;
    case 'snake':
      if (!Array.isArray(parent) && typeof last === 'string' && /[A-Z]/.test(last)) {
        container[last.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = cur!;
      }
      break;
  }
  return copy;
}

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.constant<Edit>({ kind: 'delete' }),
  fc.jsonValue({ maxDepth: 2 }).map((value) => ({ kind: 'replace', value: value as Json }) as Edit),
  fc.nat().map((at) => ({ kind: 'flipChar', at }) as Edit),
  fc.constant<Edit>({ kind: 'snake' }),
);

function editsOf(doc: Json): fc.Arbitrary<Json> {
  const all = paths(doc);
  return fc.array(fc.tuple(fc.nat({ max: all.length - 1 }), editArb), { minLength: 1, maxLength: 3 }).map((edits) => {
    let d = doc;
    for (const [i, e] of edits) {
      const p = paths(d);
      d = applyEdit(d, p[i % p.length]!, e);
    }
    return d;
  });
}

// ---------------------------------------------------------------- arbitrary valid documents

const bytes = (min = 1, max = 40) => fc.uint8Array({ minLength: min, maxLength: max });
const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const int = fc.nat({ max: 2 ** 40 });

function entryArb(version: '0.1' | '0.2' | '0.3'): fc.Arbitrary<TransparencyLogEntry> {
  return fc
    .record({
      logIndex: int,
      logId: hash32,
      kind: fc.constantFrom('hashedrekord', 'dsse', 'intoto'),
      kversion: fc.constantFrom('0.0.1', '0.0.2'),
      integratedTime: int,
      set: fc.option(bytes(), { nil: undefined }),
      proofIndex: fc.nat({ max: 1000 }),
      extra: fc.nat({ max: 1000 }),
      rootHash: hash32,
      hashes: fc.array(hash32, { maxLength: 5 }),
      checkpoint: fc.string({ minLength: 1, maxLength: 60 }),
      body: bytes(1, 200),
    })
    .map((r) => {
      const e: TransparencyLogEntry = {
        logIndex: r.logIndex,
        logId: r.logId,
        kindVersion: { kind: r.kind, version: r.kversion },
        integratedTime: r.integratedTime,
        canonicalizedBody: r.body,
      };
      if (version === '0.1' || r.set) e.inclusionPromise = { signedEntryTimestamp: r.set ?? Uint8Array.of(1) };
      if (version !== '0.1' || r.extra % 2 === 0) {
        e.inclusionProof = {
          logIndex: r.proofIndex,
          treeSize: r.proofIndex + 1 + r.extra,
          rootHash: r.rootHash,
          hashes: r.hashes,
          checkpoint: r.checkpoint,
        };
      }
      return e;
    });
}

const bundleArb: fc.Arbitrary<Bundle> = fc.constantFrom('0.1', '0.2', '0.3').chain((version) =>
  fc
    .record({
      material: fc.oneof(
        fc.string({ maxLength: 20 }).map((hint) => ({ type: 'publicKey' as const, hint })),
        bytes().map((certificate) => ({ type: 'certificate' as const, certificate })),
        ...(version === '0.3'
          ? []
          : [
              fc
                .array(bytes(), { minLength: 1, maxLength: 3 })
                .map((certificates) => ({ type: 'x509CertificateChain' as const, certificates })),
            ]),
      ),
      entries: fc.uniqueArray(entryArb(version as '0.1'), {
        maxLength: 4,
        selector: (e) => `${Buffer.from(e.logId).toString('hex')}/${e.logIndex}`,
      }),
      timestamps: fc.uniqueArray(bytes(), { maxLength: 3, selector: (b) => Buffer.from(b).toString('hex') }),
      content: fc.oneof(
        fc
          .record({
            sig: bytes(),
            md: fc.option(fc.record({ alg: fc.constantFrom('sha256', 'sha384', 'sha512'), seed: fc.nat() }), { nil: undefined }),
          })
          .map(({ sig, md }) =>
            md
              ? {
                  type: 'messageSignature' as const,
                  signature: sig,
                  messageDigest: {
                    algorithm: md.alg as 'sha256',
                    digest: new Uint8Array({ sha256: 32, sha384: 48, sha512: 64 }[md.alg]!).fill(md.seed % 256),
                  },
                }
              : { type: 'messageSignature' as const, signature: sig },
          ),
        fc
          .record({
            payload: bytes(0, 60),
            payloadType: fc.string({ minLength: 1, maxLength: 30 }),
            sig: bytes(),
            keyid: fc.string({ maxLength: 10 }),
          })
          .map((d) => ({
            type: 'dsseEnvelope' as const,
            envelope: { payload: d.payload, payloadType: d.payloadType, signatures: [{ sig: d.sig, keyid: d.keyid }] },
          })),
      ),
      legacy03: fc.boolean(),
    })
    .map((r) => ({
      mediaType:
        version === '0.1'
          ? BUNDLE_MEDIA_TYPE_V01
          : version === '0.2'
            ? BUNDLE_MEDIA_TYPE_V02
            : r.legacy03
              ? 'application/vnd.dev.sigstore.bundle+json;version=0.3'
              : BUNDLE_MEDIA_TYPE_V03,
      verificationMaterial: { content: r.material, tlogEntries: r.entries, rfc3161Timestamps: r.timestamps },
      content: r.content,
    })),
);

const dateArb = fc.integer({ min: 0, max: 4_000_000_000_000 }).map((ms) => new Date(ms));
const serviceArb: fc.Arbitrary<Service> = fc.record({
  url: fc.webUrl(),
  majorApiVersion: fc.integer({ min: 0, max: 3 }),
  validFor: fc
    .record({ start: dateArb, end: fc.option(dateArb, { nil: undefined }) })
    .map((r) => (r.end ? { start: r.start, end: r.end } : { start: r.start })),
  operator: fc.constantFrom('a.example', 'b.example', 'c.example'),
});
const selectorArb = fc.oneof(
  fc.constantFrom('ALL', 'ANY').map((selector) => ({ selector: selector as 'ALL' | 'ANY' })),
  fc.integer({ min: 1, max: 3 }).map((count) => ({ selector: 'EXACT' as const, count })),
);
const signingConfigArb: fc.Arbitrary<SigningConfig> = fc.record({
  mediaType: fc.constant(SIGNING_CONFIG_MEDIA_TYPE_V02),
  caUrls: fc.array(serviceArb, { maxLength: 4 }),
  oidcUrls: fc.array(serviceArb, { maxLength: 3 }),
  rekorTlogUrls: fc.array(serviceArb, { maxLength: 5 }),
  tsaUrls: fc.array(serviceArb, { maxLength: 5 }),
  rekorTlogConfig: selectorArb,
  tsaConfig: selectorArb,
});

// ---------------------------------------------------------------- properties

test('parseBundle / parseTrustedRoot / parseSigningConfig / parseClientTrustConfig throw only WaxsealError on arbitrary JSON', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      onlyWaxsealErrors(() => parseBundle(v));
      onlyWaxsealErrors(() => parseTrustedRoot(v));
      onlyWaxsealErrors(() => parseSigningConfig(v));
      onlyWaxsealErrors(() => parseClientTrustConfig(v));
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => onlyWaxsealErrors(() => parseBundleJson(s))),
    { numRuns: 200 },
  );
});

test('generated bundles round-trip through serialize -> parse', () => {
  fc.assert(
    fc.property(bundleArb, (b) => {
      const json = JSON.parse(JSON.stringify(serializeBundle(b)));
      const again = parseBundle(json);
      assert.deepEqual(again, b);
      assert.deepEqual(serializeBundle(again), json);
    }),
    { numRuns: 200 },
  );
});

test('generated signing configs round-trip, and selectServices obeys the selection rules', () => {
  fc.assert(
    fc.property(signingConfigArb, dateArb, (c, now) => {
      const again = parseSigningConfig(JSON.parse(JSON.stringify(serializeSigningConfig(c))));
      assert.deepEqual(serializeSigningConfig(again), serializeSigningConfig(c));
      let sel;
      try {
        sel = selectServices(again, now);
      } catch (e) {
        // Nothing selectable at `now`: refused as an unusable signing config.
        assertWaxsealError(e, 'ERR_SIGNING_CONFIG_INVALID');
        return;
      }
      const valid = (s: Service) => (!s.validFor.start || s.validFor.start <= now) && (!s.validFor.end || now <= s.validFor.end);
      assert.ok(valid(sel.ca));
      for (const list of [sel.tlogs, sel.tsas]) {
        assert.ok(list.every(valid));
        assert.equal(new Set(list.map((s) => s.operator)).size, list.length, 'one service per operator');
        assert.ok(
          list.every((s) => s.majorApiVersion === list[0]!.majorApiVersion),
          'versions are never mixed',
        );
      }
      if (c.tsaConfig.selector === 'ANY') assert.ok(sel.tsas.length <= 1);
      if (c.tsaConfig.selector === 'EXACT' && sel.tsas.length > 0) assert.equal(sel.tsas.length, c.tsaConfig.count);
    }),
    { numRuns: 300 },
  );
});

test('parseTimestampResponse throws only WaxsealError on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyWaxsealErrors(() => parseTimestampResponse(b))),
    { numRuns: 500 },
  );
});

if (vectorsPresent()) {
  const cases = loadCases();
  const parsedOk = cases.filter((c) => {
    try {
      parseBundleJson(c.bundleText);
      return true;
    } catch {
      return false;
    }
  });
  const tsTokens = parsedOk.flatMap((c) => parseBundleJson(c.bundleText).verificationMaterial.rfc3161Timestamps).slice(0, 12);

  test('real bundles round-trip and re-parse from snake_case keys', () => {
    for (const c of parsedOk) {
      const b = parseBundleJson(c.bundleText);
      const snake = JSON.parse(
        JSON.stringify(serializeBundle(b)).replace(
          /"([a-z0-9]+[A-Z][A-Za-z0-9]*)":/g,
          (_m, k: string) => `"${k.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`)}":`,
        ),
      );
      assert.deepEqual(parseBundle(snake), b, c.id);
    }
    for (const c of cases) {
      const r = trustedRootOf(c);
      assert.deepEqual(
        serializeTrustedRoot(parseTrustedRoot(JSON.parse(JSON.stringify(serializeTrustedRoot(r))))),
        serializeTrustedRoot(r),
      );
    }
  });

  test('parseTimestampResponse on edited real tokens throws only WaxsealError', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: tsTokens.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (i, flips, cut) => {
          const t = new Uint8Array(tsTokens[i]!);
          for (const [at, x] of flips) t[at % t.length] ^= x;
          onlyWaxsealErrors(() => parseTimestampResponse(t));
          onlyWaxsealErrors(() => parseTimestampResponse(t.subarray(0, cut % t.length)));
        },
      ),
      { numRuns: 400 },
    );
  });

  // The full pipeline on edited real bundles and trusted roots: verification either succeeds
  // or fails with a WaxsealError; never a TypeError or a crash.
  const pick = (i: number): VectorCase => parsedOk[i % parsedOk.length]!;
  test('verify on randomly edited real bundles throws only WaxsealError', () => {
    fc.assert(
      fc.property(fc.nat(), (i) => {
        const c = pick(i);
        return fc.assert(
          fc.property(editsOf(JSON.parse(c.bundleText) as Json), (doc) => {
            onlyWaxsealErrors(() => new Verifier(trustedRootOf(c), c.options).verify(parseBundle(doc), c.artifact, c.policy));
          }),
          { numRuns: 8 },
        );
      }),
      { numRuns: 40 },
    );
  });

  test('verify on real bundles with random byte flips in decoded fields throws only WaxsealError', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (i, field, at) => {
        const c = pick(i);
        const b = parseBundleJson(c.bundleText);
        const targets: Uint8Array[] = [];
        const vm = b.verificationMaterial;
        if (vm.content.type === 'certificate') targets.push(vm.content.certificate);
        if (vm.content.type === 'x509CertificateChain') targets.push(...vm.content.certificates);
        for (const e of vm.tlogEntries) {
          targets.push(e.canonicalizedBody, e.logId);
          if (e.inclusionPromise) targets.push(e.inclusionPromise.signedEntryTimestamp);
          if (e.inclusionProof) targets.push(e.inclusionProof.rootHash, ...e.inclusionProof.hashes);
        }
        targets.push(...vm.rfc3161Timestamps);
        if (b.content.type === 'messageSignature') targets.push(b.content.signature);
        else targets.push(b.content.envelope.payload, b.content.envelope.signatures[0]!.sig);
        const t = targets[field % targets.length]!;
        if (t.length > 0) t[at % t.length] ^= 0x10;
        onlyWaxsealErrors(() => new Verifier(trustedRootOf(c), c.options).verify(b, c.artifact, c.policy));
      }),
      { numRuns: 300 },
    );
  });

  test('Verifier construction on edited real trusted roots throws only WaxsealError', () => {
    const roots = [...new Set(cases.map((c) => c.trustedRootText))].map((t) => JSON.parse(t) as Json);
    fc.assert(
      fc.property(
        fc.nat({ max: roots.length - 1 }).chain((i) => editsOf(roots[i]!)),
        (doc) => {
          onlyWaxsealErrors(() => new Verifier(parseTrustedRoot(doc), { skipSctUnsafe: true }));
        },
      ),
      { numRuns: 150 },
    );
  });
}
