// The bundle verifier (sigstore-go's Verifier.Verify, the Sigstore client spec). Pure and synchronous: a Verifier is built once
// from a TrustedRoot (keys parsed, certificates parsed, logs indexed) and then verifies any
// number of bundles. Every failure is a WaxsealError with code ERR_VERIFY_* and `check` naming
// the failed check (see fail.ts CHECKS).
//
// Order of checks:
//   1. key material (leaf certificate and its profile, or the caller's public key)
//   2. the signature over the artifact (message signature or DSSE + in-toto subject)
//   3. transparency-log entries (Rekor v1 / v2), each from a trusted log verified or rejected
//   4. RFC 3161 timestamps (malformed ones reject the bundle; ones that do not verify are ignored),
//      then the keys of logs that vouched for no time, at every verified time
//   5. thresholds: tlog entries, RFC 3161 times, integrated times, observer times
//   6. the certificate path at every verified time against the trusted CAs (or the key's
//      validity window), then SCTs against the trusted CT logs
//   7. the identity policy
import {
  WaxsealError,
  toHex,
  fromUtf8,
  seq,
  oid as derOid,
  nullValue,
  bitString,
  decodePem,
  OID,
  publicKeyFromSpki,
  sha256,
  noteVerifier,
  parseCertificate,
  certPublicKey,
  basicConstraints,
  keyUsage,
  extendedKeyUsage,
  type PublicKeyInfo,
  type NoteVerifier,
  type Certificate,
  type InTotoStatement,
} from '@waxseal/core';
import {
  bundleVersion,
  bundleSignatureBytes,
  parseTrustedRootJson,
  type Bundle,
  type BundleVersion,
  type TimeRange,
  type TransparencyLogEntry,
  type TrustedPublicKey,
  type TrustedRoot,
} from '@waxseal/bundle';
import { fail, under, type CheckName } from './fail.ts';
import { Authority, checkIssuingPath, checkPathAt, inRange, isCa, parseCertificateOnce, unhandledCriticalExtension } from './chain.ts';
import { checkLogKeyAt, verifyTlogEntry, type TrustedLog, type TlogSubject } from './tlog.ts';
import { parseTimestampResponse, verifyTimestamp } from './timestamp.ts';
import { verifyEmbeddedScts, type CtLog } from './sct.ts';
import { ArtifactDigests, verifyMessageSignature, verifyDsseSignature, parseStatement, checkSubject, type Artifact } from './signature.ts';
import { signerIdentity, matchIdentities, checkIdentityPolicy, type CertificateIdentity, type SignerIdentity } from './identity.ts';

export interface VerifierOptions {
  /** Verified transparency-log entries required, counted over distinct logs. Default 1. */
  tlogThreshold?: number;
  /** Verified embedded SCTs required, counted over distinct CT logs. Default 1; must be >= 1 unless skipSctUnsafe. */
  ctlogThreshold?: number;
  /** Skip SCT verification entirely (private deployments without CT). Unsafe for public-good. */
  skipSctUnsafe?: boolean;
  /** Verified RFC 3161 timestamps required, counted over distinct TSAs. Default 0. */
  timestampThreshold?: number;
  /** Verified SET-backed integrated times required, counted over distinct logs. Default 0. */
  integratedTimestampThreshold?: number;
  /** Verified observer times (RFC 3161 + SET integrated times) required. Default 1. */
  observerTimestampThreshold?: number;
}

/** A caller-supplied public key for bundles signed with a self-managed key. */
export interface TrustedKey {
  /** DER SPKI, or PEM text ("PUBLIC KEY"). */
  publicKey: Uint8Array | string;
  /** When set, every verified signing time must fall inside it. */
  validFor?: TimeRange;
}

export interface VerificationPolicy {
  /** Accept a certificate whose identity matches any of these. */
  identities?: CertificateIdentity[];
  /** Verify a public-key bundle with this key. */
  publicKey?: TrustedKey;
  /** Accept any identity the trusted CAs certified. Unsafe: anyone can get a certificate. */
  withoutIdentityUnsafe?: boolean;
  /** For DSSE bundles: the in-toto predicateType must equal this. */
  predicateType?: string;
}

export interface VerifiedTimestamp {
  time: Date;
  source: 'rfc3161' | 'tlog';
  /** TSA URI (or name) for RFC 3161, log base URL for integrated times. */
  authority: string;
}

export interface VerifiedTlogEntry {
  logId: string;
  baseUrl: string;
  /**
   * The log index a verified signature (SET) or inclusion proof covers; absent when none does
   * (then the bundle's logIndex is an unsigned claim, named in `unverified`).
   */
  logIndex?: number;
  kind: string;
  version: string;
  rekorVersion: 1 | 2;
  /** Present when a verified SET backs it. */
  integratedTime?: Date;
  inclusionProof: boolean;
  /** Fields of the bundle's entry that no verified signature or proof covers (not to be shown as facts). */
  unverified: ('logIndex' | 'integratedTime')[];
}

export type VerifiedSigner =
  | ({ type: 'certificate'; certificate: Certificate; certificateAuthority: string } & SignerIdentity)
  | { type: 'publicKey'; hint: string; publicKey: PublicKeyInfo };

export interface VerificationResult {
  bundleVersion: BundleVersion;
  content: 'messageSignature' | 'dsseEnvelope';
  signer: VerifiedSigner;
  timestamps: VerifiedTimestamp[];
  tlogEntries: VerifiedTlogEntry[];
  /** Base URLs of the CT logs whose SCTs verified. */
  ctLogs: string[];
  /** DSSE only. */
  payloadType?: string;
  statement?: InTotoStatement;
  /** Material that was present but did not count (unknown logs, timestamps that did not verify). */
  ignored: string[];
}

const DEFAULTS = {
  tlogThreshold: 1,
  ctlogThreshold: 1,
  timestampThreshold: 0,
  integratedTimestampThreshold: 0,
  observerTimestampThreshold: 1,
};

function threshold(v: number | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < 0) throw new WaxsealError('ERR_INVALID_INPUT', `${name} must be a non-negative integer`);
  return v;
}

function trustedKeyInfo(k: TrustedPublicKey): PublicKeyInfo {
  if (!k.rawBytes) throw new Error('no key bytes');
  // The deprecated PKCS1_* details carry a bare RSAPublicKey: wrap it as an SPKI.
  const spki = k.keyDetails.startsWith('PKCS1_') ? seq(seq(derOid(OID.rsaEncryption), nullValue()), bitString(k.rawBytes)) : k.rawBytes;
  return publicKeyFromSpki(spki);
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class Verifier {
  readonly trustedRoot: TrustedRoot;
  readonly options: Readonly<Required<Omit<VerifierOptions, 'skipSctUnsafe'>> & { skipSctUnsafe: boolean }>;
  readonly #cas: Authority[];
  readonly #tsas: Authority[];
  readonly #tlogs = new Map<string, TrustedLog>();
  readonly #ctlogs = new Map<string, CtLog>();
  /** checkIssuingPath results per (authority, issuer index, EKU): time-independent. */
  readonly #issuingPath = new Map<string, string | null>();

  constructor(trustedRoot: TrustedRoot, options: VerifierOptions = {}) {
    this.trustedRoot = trustedRoot;
    const skipSctUnsafe = options.skipSctUnsafe === true;
    const ctlogThreshold = threshold(options.ctlogThreshold, 'ctlogThreshold', DEFAULTS.ctlogThreshold);
    if (ctlogThreshold === 0 && !skipSctUnsafe) {
      throw new WaxsealError(
        'ERR_INVALID_INPUT',
        'ctlogThreshold 0 disables SCT verification: set skipSctUnsafe: true to do that explicitly',
      );
    }
    this.options = Object.freeze({
      tlogThreshold: threshold(options.tlogThreshold, 'tlogThreshold', DEFAULTS.tlogThreshold),
      ctlogThreshold: skipSctUnsafe ? 0 : ctlogThreshold,
      skipSctUnsafe,
      timestampThreshold: threshold(options.timestampThreshold, 'timestampThreshold', DEFAULTS.timestampThreshold),
      integratedTimestampThreshold: threshold(
        options.integratedTimestampThreshold,
        'integratedTimestampThreshold',
        DEFAULTS.integratedTimestampThreshold,
      ),
      observerTimestampThreshold: threshold(
        options.observerTimestampThreshold,
        'observerTimestampThreshold',
        DEFAULTS.observerTimestampThreshold,
      ),
    });
    const authorities = (list: TrustedRoot['certificateAuthorities'], name: string, kind: 'CA' | 'TSA') =>
      list.map(
        (ca, i) =>
          new Authority(
            i,
            ca,
            (der, j) => {
              try {
                return parseCertificate(der);
              } catch (e) {
                throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', `${name}[${i}].certChain.certificates[${j}]: ${describeError(e)}`, {
                  cause: e,
                });
              }
            },
            kind,
          ),
      );
    this.#cas = authorities(trustedRoot.certificateAuthorities, 'certificateAuthorities', 'CA');
    this.#tsas = authorities(trustedRoot.timestampAuthorities, 'timestampAuthorities', 'TSA');
    for (const log of trustedRoot.tlogs) {
      let key: PublicKeyInfo | undefined;
      let keyError: string | undefined;
      try {
        key = trustedKeyInfo(log.publicKey);
      } catch (e) {
        keyError = describeError(e);
      }
      let hostname = '';
      let v2Verifier: NoteVerifier | undefined;
      try {
        hostname = new URL(log.baseUrl).hostname;
        if (key) v2Verifier = noteVerifier(hostname, key);
      } catch {
        // not usable for Rekor v2 checkpoints
      }
      const entry: TrustedLog = {
        instance: log,
        key,
        v1Hint: key ? sha256(key.spki).subarray(0, 4) : new Uint8Array(4),
        v2Verifier,
        hostname,
      };
      if (keyError !== undefined) entry.keyError = keyError;
      this.#tlogs.set(toHex(log.logId), entry);
    }
    for (const log of trustedRoot.ctlogs) {
      let key: PublicKeyInfo | undefined;
      try {
        key = trustedKeyInfo(log.publicKey);
      } catch {
        key = undefined;
      }
      this.#ctlogs.set(toHex(log.logId), { instance: log, key });
    }
  }

  /** A Verifier from trusted_root.json text or bytes. */
  static fromJson(trustedRootJson: string | Uint8Array, options?: VerifierOptions): Verifier {
    return new Verifier(parseTrustedRootJson(trustedRootJson), options);
  }

  /**
   * Verifies `bundle` over `artifact` (its bytes, its digest, or nothing for a DSSE envelope
   * checked on its own) under `policy`. Returns what was verified, or throws a WaxsealError
   * (ERR_VERIFY_*, with `check`).
   */
  verify(bundle: Bundle, artifact: Artifact | undefined, policy: VerificationPolicy): VerificationResult {
    const version = bundleVersion(bundle.mediaType);
    const vm = bundle.verificationMaterial;
    const ignored: string[] = [];
    const digests = new ArtifactDigests(artifact);

    // ---- 1. key material
    let leaf: Certificate | undefined;
    let key: PublicKeyInfo;
    let keyWindow: TimeRange | undefined;
    if (vm.content.type === 'publicKey') {
      if (!policy.publicKey) fail('key.mismatch', 'the bundle is signed with a public key, but no public key was given to verify it with');
      key = under('key.mismatch', 'the given public key', () => {
        const k = policy.publicKey!.publicKey;
        return publicKeyFromSpki(typeof k === 'string' ? decodePem(k, ['PUBLIC KEY']).der : k);
      });
      keyWindow = policy.publicKey.validFor;
    } else {
      if (policy.publicKey) fail('key.mismatch', 'the bundle is signed with a certificate, but a public key was expected');
      const identities = policy.identities ?? [];
      if (identities.length === 0 && policy.withoutIdentityUnsafe !== true) {
        fail('policy', 'a certificate bundle needs an identity policy (identities), or withoutIdentityUnsafe: true');
      }
      identities.forEach(checkIdentityPolicy);
      const der = vm.content.type === 'certificate' ? vm.content.certificate : vm.content.certificates[0]!;
      leaf = under('cert.parse', 'the signing certificate', () => parseCertificateOnce(der));
      key = under('cert.parse', 'the signing certificate key', () => certPublicKey(leaf!));
      checkLeafProfile(leaf);
    }

    // ---- 2. signature over the artifact
    let statement: InTotoStatement | undefined;
    if (bundle.content.type === 'messageSignature') {
      verifyMessageSignature(key, bundle.content.signature, bundle.content.messageDigest, digests);
    } else {
      const env = bundle.content.envelope;
      verifyDsseSignature(key, env);
      if (env.payloadType === 'application/vnd.in-toto+json' || artifact !== undefined || policy.predicateType !== undefined) {
        statement = parseStatement(env);
        checkSubject(statement, digests);
        if (policy.predicateType !== undefined && statement.predicateType !== policy.predicateType) {
          fail(
            'dsse.predicate-type',
            `predicate type ${JSON.stringify(statement.predicateType.slice(0, 100))} is not ${JSON.stringify(policy.predicateType)}`,
          );
        }
      }
    }

    // ---- 3. transparency-log entries
    const signature = bundleSignatureBytes(bundle);
    const subject: TlogSubject = {
      content: bundle.content,
      signature,
      material: leaf
        ? { type: 'certificate', cert: leaf }
        : keyWindow
          ? { type: 'publicKey', spki: key.spki, validFor: keyWindow }
          : { type: 'publicKey', spki: key.spki },
      key,
      artifactDigest: (alg) => digests.get(alg),
    };
    const tlogEntries: VerifiedTlogEntry[] = [];
    const timestamps: VerifiedTimestamp[] = [];
    const integratedLogs = new Set<string>();
    // Entries whose log vouched for no time (Rekor v2, v1 without a SET): their log key is
    // checked once the verified times are known (step 4).
    const untimed: { index: number; log: TrustedLog }[] = [];
    vm.tlogEntries.forEach((entry: TransparencyLogEntry, i) => {
      const r = under('tlog.body', `tlog entry ${i}`, () => verifyTlogEntry(entry, subject, this.#tlogs));
      if (r === null) {
        ignored.push(`tlog entry ${i}: log ${toHex(entry.logId).slice(0, 16)} is not in the trusted root`);
        return;
      }
      const v: VerifiedTlogEntry = {
        logId: r.logIdHex,
        baseUrl: r.log.instance.baseUrl,
        ...(r.logIndex !== undefined ? { logIndex: r.logIndex } : {}),
        kind: entry.kindVersion.kind,
        version: entry.kindVersion.version,
        rekorVersion: r.rekorVersion,
        inclusionProof: r.inclusionProofVerified,
        unverified: [
          ...(r.logIndex === undefined ? (['logIndex'] as const) : []),
          ...(!r.integratedTime && r.rekorVersion === 1 && entry.integratedTime !== 0 ? (['integratedTime'] as const) : []),
        ],
      };
      if (!r.integratedTime) untimed.push({ index: i, log: r.log });
      else {
        v.integratedTime = r.integratedTime;
        // An integrated time counts once per log.
        if (!integratedLogs.has(r.logIdHex)) {
          integratedLogs.add(r.logIdHex);
          timestamps.push({ time: r.integratedTime, source: 'tlog', authority: r.log.instance.baseUrl });
        }
      }
      tlogEntries.push(v);
    });

    // ---- 4. RFC 3161 timestamps
    const parsed = vm.rfc3161Timestamps.map((raw) => parseTimestampResponse(raw));
    const tsaSeen = new Set<string>();
    parsed.forEach((t, i) => {
      try {
        const r = verifyTimestamp(t, signature, this.#tsas);
        if (tsaSeen.has(r.authority.name)) {
          ignored.push(`timestamp ${i}: another timestamp from ${r.authority.name} already counted`);
          return;
        }
        tsaSeen.add(r.authority.name);
        timestamps.push({ time: r.time, source: 'rfc3161', authority: r.authority.name });
      } catch (e) {
        if (!(e instanceof WaxsealError)) throw e;
        ignored.push(`timestamp ${i}: ${e.message}`);
      }
    });

    // Every authority is used only inside its validFor at the time the evidence proves: the SET
    // vouched for v1 integrated times (tlog.ts), genTime for TSAs (timestamp.ts), each verified
    // time for CAs (step 6) and SCTs' own times for CT logs (sct.ts). A log that gave no time
    // (Rekor v2) signed its checkpoint around the signing time, so its key must be valid at every
    // verified signing time.
    for (const u of untimed) {
      for (const t of timestamps) {
        checkLogKeyAt(u.log, t.time, 'entry time', 'tlog.key', `tlog entry ${u.index}; ${t.source} time from ${t.authority}`);
      }
    }

    // ---- 5. thresholds
    const o = this.options;
    const tlogCount = new Set(tlogEntries.map((e) => e.logId)).size;
    const why = ignored.length ? ` (${ignored.join('; ')})` : '';
    // Threshold failures carry what did not count, for callers that show it.
    const short = (check: CheckName, message: string): never => fail(check, `${message}${why}`, undefined, { ignored });
    if (tlogCount < o.tlogThreshold) short('threshold.tlog', `${tlogCount} verified transparency-log entries, ${o.tlogThreshold} required`);
    const rfc3161Count = timestamps.filter((t) => t.source === 'rfc3161').length;
    const integratedCount = timestamps.length - rfc3161Count;
    if (rfc3161Count < o.timestampThreshold)
      short('threshold.rfc3161-timestamp', `${rfc3161Count} verified RFC 3161 timestamps, ${o.timestampThreshold} required`);
    if (integratedCount < o.integratedTimestampThreshold) {
      short(
        'threshold.integrated-timestamp',
        `${integratedCount} verified integrated timestamps, ${o.integratedTimestampThreshold} required`,
      );
    }
    if (timestamps.length < o.observerTimestampThreshold)
      short('threshold.timestamp', `${timestamps.length} verified signing times, ${o.observerTimestampThreshold} required`);

    // ---- 6. certificate path per verified time, SCTs; or the key's window
    let signer: VerifiedSigner;
    const ctLogs: string[] = [];
    if (leaf) {
      if (timestamps.length === 0)
        short('threshold.timestamp', 'a certificate can only be checked at a verified signing time, and there is none');
      const { authority, issuer } = under('cert.chain', 'certificate path', () => this.#validateLeaf(leaf!, timestamps));
      if (this.options.ctlogThreshold > 0) {
        const r = under('sct', 'embedded SCTs', () => verifyEmbeddedScts(leaf!, issuer, this.#ctlogs));
        if (r.verifiedLogs.length < this.options.ctlogThreshold) {
          fail(
            'sct',
            `${r.verifiedLogs.length} verified SCTs from distinct CT logs, ${this.options.ctlogThreshold} required${r.problems.length ? ` (${r.problems.join('; ')})` : ''}`,
          );
        }
        ctLogs.push(...r.verifiedLogs);
      }
      const identity = under('cert.profile', 'Fulcio extensions', () => signerIdentity(leaf!));
      // ---- 7. identity policy
      if (policy.withoutIdentityUnsafe !== true || (policy.identities?.length ?? 0) > 0) matchIdentities(policy.identities ?? [], identity);
      signer = { type: 'certificate', certificate: leaf, certificateAuthority: authority.name, ...identity };
    } else {
      for (const t of timestamps) {
        if (keyWindow && !inRange(keyWindow, t.time))
          fail('key.validity', `signing time ${t.time.toISOString()} (${t.source}) is outside the public key's validity`);
      }
      signer = { type: 'publicKey', hint: vm.content.type === 'publicKey' ? vm.content.hint : '', publicKey: key };
    }

    const result: VerificationResult = {
      bundleVersion: version,
      content: bundle.content.type,
      signer,
      timestamps,
      tlogEntries,
      ctLogs,
      ignored,
    };
    if (bundle.content.type === 'dsseEnvelope') result.payloadType = bundle.content.envelope.payloadType;
    if (statement) result.statement = statement;
    return result;
  }

  /** Path-validates the leaf at every verified time; returns the authority and issuer used. */
  #validateLeaf(leaf: Certificate, times: readonly VerifiedTimestamp[]): { authority: Authority; issuer: Certificate } {
    const issuers = new Map<Authority, number>();
    let chosen: { authority: Authority; issuer: Certificate } | undefined;
    for (const t of times) {
      const reasons: string[] = [];
      let ok = false;
      for (const ca of this.#cas) {
        let issuer = issuers.get(ca);
        if (issuer === undefined) {
          issuer = ca.findIssuer(leaf);
          issuers.set(ca, issuer);
        }
        if (issuer < 0) {
          reasons.push(`not issued by ${ca.name}`);
          continue;
        }
        const cacheKey = `${ca.index}/${issuer}`;
        let path = this.#issuingPath.get(cacheKey);
        if (path === undefined) {
          path = checkIssuingPath(ca, issuer, OID.kpCodeSigning);
          this.#issuingPath.set(cacheKey, path);
        }
        const p = path ?? checkPathAt(ca, leaf, issuer, t.time);
        if (p !== null) {
          reasons.push(p);
          continue;
        }
        ok = true;
        chosen ??= { authority: ca, issuer: ca.chain[issuer]! };
        break;
      }
      if (!ok) {
        const detail = this.#cas.length === 0 ? 'the trusted root lists no certificate authorities' : reasons.join('; ');
        fail(
          'cert.chain',
          `the certificate does not chain to a trusted CA at ${t.time.toISOString()} (${t.source} time from ${t.authority}): ${detail}`,
        );
      }
    }
    return chosen!;
  }
}

/** The Fulcio leaf profile: a code-signing end-entity certificate. */
function checkLeafProfile(leaf: Certificate): void {
  under('cert.profile', 'the signing certificate', () => {
    if (isCa(leaf) || basicConstraints(leaf)?.ca) fail('cert.profile', 'the signing certificate is a CA certificate');
    const ku = keyUsage(leaf);
    if (ku && !ku.has('digitalSignature')) fail('cert.profile', 'the signing certificate key usage lacks digitalSignature');
    const eku = extendedKeyUsage(leaf);
    if (!eku?.includes(OID.kpCodeSigning)) fail('cert.profile', 'the signing certificate lacks the codeSigning extended key usage');
    const crit = unhandledCriticalExtension(leaf);
    if (crit) fail('cert.profile', `the signing certificate has an unhandled critical extension ${crit}`);
  });
}

/** Convenience for callers holding JSON: bytes of a PEM public key file as a TrustedKey. */
export function trustedKeyFromPem(pem: string | Uint8Array, validFor?: TimeRange): TrustedKey {
  const text = typeof pem === 'string' ? pem : fromUtf8(pem, 'public key PEM');
  return validFor ? { publicKey: text, validFor } : { publicKey: text };
}
