// The signer identity of a Fulcio certificate and the identity policy (sigstore-go
// CertificateIdentity): a SAN matcher and an issuer matcher, exact or regular expression, and
// optional Fulcio extension values compared exactly. Any configured identity may match.
//
// Regular expressions use Go's RE2 syntax and semantics, as in sigstore-go and cosign (a
// pattern copied from a cosign --certificate-identity-regexp means the same here), and run on
// @waxseal/core's linear-time engine, so a hostile SAN cannot make matching backtrack. Like Go's
// regexp.MatchString they are NOT anchored: "example.com" matches "evil-example.com.attacker".
// Write ^...$.
import {
  compileRegexp,
  FULCIO_OID,
  getExtension,
  readFulcioExtensionValue,
  subjectAltNames,
  type FulcioExtensionName,
  type Certificate,
  type Regexp,
  type SubjectAltName,
} from '@waxseal/core';
import { fail, type CheckName } from './fail.ts';

export interface CertificateIdentity {
  /** The SAN exactly (URI, e-mail, or the Fulcio OtherName value). */
  subjectAlternativeName?: string;
  /**
   * An unanchored RE2 regular expression the SAN must match. A RegExp object is read as its
   * source in RE2 syntax, with its i, m and s flags.
   */
  subjectAlternativeNameRegExp?: string | RegExp;
  /** The OIDC issuer exactly (extension 1.8, or the legacy 1.1 when only that is present). */
  issuer?: string;
  /** An unanchored RE2 regular expression the issuer must match (a RegExp: as above). */
  issuerRegExp?: string | RegExp;
  /** Fulcio extension values that must be present and equal, by name (e.g. sourceRepositoryURI) or OID. */
  extensions?: Record<string, string>;
}

export interface SignerIdentity {
  /** The summary SAN: the first URI, else the first e-mail, else the Fulcio OtherName value. */
  san: string | undefined;
  sanType: 'uri' | 'email' | 'otherName' | undefined;
  /** Issuer from 1.8, falling back to the legacy 1.1. */
  issuer: string | undefined;
  /** Every Fulcio extension present, by name, as encoded (no fallback between 1.1 and 1.8). */
  extensions: Partial<Record<FulcioExtensionName, string>>;
  /** Every SAN entry of a supported kind. */
  subjectAlternativeNames: SubjectAltName[];
}

const NAME_BY_OID = new Map<string, FulcioExtensionName>(Object.entries(FULCIO_OID).map(([n, o]) => [o, n as FulcioExtensionName]));

export function signerIdentity(cert: Certificate): SignerIdentity {
  const sans = subjectAltNames(cert);
  const uri = sans.find((s) => s.type === 'uri');
  const email = sans.find((s) => s.type === 'email');
  const other = sans.find((s) => s.type === 'otherName' && s.typeId === FULCIO_OID.otherName);
  const summary = uri ?? email ?? other;
  const extensions: Partial<Record<FulcioExtensionName, string>> = {};
  for (const [name, oid] of Object.entries(FULCIO_OID) as [FulcioExtensionName, string][]) {
    if (name === 'otherName') continue;
    const ext = getExtension(cert, oid);
    if (ext) extensions[name] = readFulcioExtensionValue(oid, ext.value);
  }
  return {
    san: summary?.value,
    sanType: summary?.type === 'uri' || summary?.type === 'email' || summary?.type === 'otherName' ? summary.type : undefined,
    issuer: extensions.issuer ?? extensions.issuerV1,
    extensions,
    subjectAlternativeNames: sans,
  };
}

// Compiled patterns by source, so repeated verifications with one policy compile once.
const compiled = new Map<string, Regexp>();

function toRegExp(r: string | RegExp, what: string): Regexp {
  // A RegExp's i/m/s flags become RE2 flags; g, y, u, v and d do not change a yes/no answer.
  const flags = typeof r === 'string' ? '' : r.flags.replace(/[^ims]/g, '');
  const source = typeof r === 'string' ? r : `${flags ? `(?${flags})` : ''}${r.source}`;
  let re = compiled.get(source);
  if (!re) {
    try {
      re = compileRegexp(source);
    } catch (e) {
      fail('policy', `${what} is not a valid RE2 regular expression: ${(e as Error).message}`, e);
    }
    if (compiled.size >= 256) compiled.clear();
    compiled.set(source, re);
  }
  return re;
}

/** Resolves an extension key (name or dotted OID) to its Fulcio name. */
export function extensionName(key: string): FulcioExtensionName {
  const oid = /^[0-9.]+/.exec(key.trim())?.[0];
  const byOid = oid === undefined ? undefined : NAME_BY_OID.get(oid);
  if (byOid && byOid !== 'otherName') return byOid;
  if (Object.hasOwn(FULCIO_OID, key) && key !== 'otherName') return key as FulcioExtensionName;
  fail('policy', `unknown Fulcio extension ${JSON.stringify(key.slice(0, 80))}`);
}

/** Validates a policy identity up front (both matchers present, regexps compile). */
export function checkIdentityPolicy(id: CertificateIdentity, i: number): void {
  if (id.subjectAlternativeName === undefined && id.subjectAlternativeNameRegExp === undefined)
    fail('policy', `identity ${i} needs a subjectAlternativeName or subjectAlternativeNameRegExp`);
  if (id.issuer === undefined && id.issuerRegExp === undefined) fail('policy', `identity ${i} needs an issuer or issuerRegExp`);
  if (id.subjectAlternativeNameRegExp !== undefined) toRegExp(id.subjectAlternativeNameRegExp, `identity ${i} SAN regexp`);
  if (id.issuerRegExp !== undefined) toRegExp(id.issuerRegExp, `identity ${i} issuer regexp`);
  for (const k of Object.keys(id.extensions ?? {})) extensionName(k);
}

function mismatchOf(id: CertificateIdentity, s: SignerIdentity): { check: CheckName; message: string } | null {
  if (id.subjectAlternativeName !== undefined && s.san !== id.subjectAlternativeName) {
    return {
      check: 'identity.san',
      message: `certificate SAN ${JSON.stringify(s.san ?? null)} is not ${JSON.stringify(id.subjectAlternativeName)}`,
    };
  }
  if (
    id.subjectAlternativeNameRegExp !== undefined &&
    (s.san === undefined || !toRegExp(id.subjectAlternativeNameRegExp, 'SAN regexp').test(s.san))
  ) {
    return {
      check: 'identity.san',
      message: `certificate SAN ${JSON.stringify(s.san ?? null)} does not match ${String(id.subjectAlternativeNameRegExp)}`,
    };
  }
  if (id.issuer !== undefined && s.issuer !== id.issuer) {
    return {
      check: 'identity.issuer',
      message: `certificate issuer ${JSON.stringify(s.issuer ?? null)} is not ${JSON.stringify(id.issuer)}`,
    };
  }
  if (id.issuerRegExp !== undefined && (s.issuer === undefined || !toRegExp(id.issuerRegExp, 'issuer regexp').test(s.issuer))) {
    return {
      check: 'identity.issuer',
      message: `certificate issuer ${JSON.stringify(s.issuer ?? null)} does not match ${String(id.issuerRegExp)}`,
    };
  }
  for (const [k, want] of Object.entries(id.extensions ?? {})) {
    if (want === '') continue; // empty expected values are ignored (sigstore-go)
    const name = extensionName(k);
    const got = s.extensions[name];
    if (got !== want)
      return {
        check: 'identity.extension',
        message: `certificate extension ${name} is ${JSON.stringify(got ?? null)}, not ${JSON.stringify(want)}`,
      };
  }
  return null;
}

/** Throws identity.* unless at least one identity matches the signer. */
export function matchIdentities(identities: readonly CertificateIdentity[], s: SignerIdentity): CertificateIdentity {
  let first: { check: CheckName; message: string } | null = null;
  for (const id of identities) {
    const m = mismatchOf(id, s);
    if (m === null) return id;
    first ??= m;
  }
  fail(first!.check, identities.length > 1 ? `no policy identity matches (first: ${first!.message})` : first!.message);
}
