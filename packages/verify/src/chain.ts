// Certificate path validation against one trusted-root authority (a Fulcio CA or a TSA):
// RFC 5280 essentials as Go's crypto/x509 applies them (which is what sigstore-go relies on):
// issuer name and signature on every link, CA basic constraints and path length, validity of
// every certificate at the given time, EKU nesting, no unhandled critical extensions.
// The links inside the trusted chain (intermediate -> root) never change, so their signature
// checks are done once per authority and cached.
import {
  bytesEqual,
  OID,
  parseCertificate,
  basicConstraints,
  keyUsage,
  extendedKeyUsage,
  authorityKeyId,
  subjectKeyId,
  isSignedBy,
  certPublicKey,
  type Certificate,
} from '@waxseal/core';
import type { CertificateAuthority, TimeRange } from '@waxseal/bundle';

/** Extensions our validation understands; any other critical extension fails the path. */
const HANDLED_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

/** A validity window as failures name it: `<start>..<end>` in ISO 8601, an open side shown as such. */
export function formatWindow(r: TimeRange): string {
  return `${r.start?.toISOString() ?? '(no start)'}..${r.end?.toISOString() ?? '(no end)'}`;
}

export function inRange(r: TimeRange, t: Date): boolean {
  const ms = t.getTime();
  return (r.start === undefined || r.start.getTime() <= ms) && (r.end === undefined || ms <= r.end.getTime());
}

export function certValidAt(c: Certificate, t: Date): boolean {
  const ms = t.getTime();
  return c.notBefore.getTime() <= ms && ms <= c.notAfter.getTime();
}

export function unhandledCriticalExtension(c: Certificate): string | undefined {
  return c.extensions.find((e) => e.critical && !HANDLED_EXTENSIONS.has(e.oid))?.oid;
}

export function isCa(c: Certificate): boolean {
  return basicConstraints(c)?.ca === true;
}

/** A trusted-root authority with its parsed chain and the cached link checks. */
export class Authority {
  readonly index: number;
  readonly source: CertificateAuthority;
  /** What the authority is, for messages: a code-signing CA or a timestamp authority. */
  readonly kind: 'CA' | 'TSA';
  /** Leaf-most first, trust anchor last. */
  readonly chain: Certificate[];
  /** Whether chain[i] is correctly issued by chain[i + 1]; undefined until first checked. */
  readonly #links: (string | null | undefined)[];

  constructor(
    index: number,
    source: CertificateAuthority,
    parse: (der: Uint8Array, i: number) => Certificate = (d) => parseCertificate(d),
    kind: 'CA' | 'TSA' = 'CA',
  ) {
    this.index = index;
    this.source = source;
    this.kind = kind;
    this.chain = source.certChain.map(parse);
    this.#links = new Array(Math.max(0, this.chain.length - 1)).fill(undefined);
  }

  /** Name used in results and for per-authority counting. */
  get name(): string {
    return this.source.uri || `${this.source.subject.organization ?? ''}/${this.source.subject.commonName ?? ''}#${this.index}`;
  }

  /**
   * Checks (once, then cached) the links chain[from] -> chain[from+1] -> ... -> anchor: names,
   * signatures, CA constraints of each issuer. Returns null when all hold, else the reason.
   */
  linksFrom(from: number): string | null {
    for (let i = from; i < this.chain.length - 1; i++) {
      let r = this.#links[i];
      if (r === undefined) {
        r = checkLink(this.chain[i]!, this.chain[i + 1]!);
        this.#links[i] = r;
      }
      if (r !== null) return r;
    }
    return null;
  }

  /** findIssuer results by certificate DER (bounded): a certificate seen before is not checked again. */
  readonly #issuerOf = new Map<string, number>();

  /**
   * Index of the chain certificate that issued `cert` (name, key identifier and signature
   * checked), or -1. Time-independent (a function of the certificate's bytes and this chain), so
   * remembered per DER: a run verifying many signatures by one certificate (a rebase, a range of
   * commits) checks its issuer once; validity at each time is still checked by every caller.
   */
  findIssuer(cert: Certificate): number {
    const k = derKey(cert.der);
    let r = this.#issuerOf.get(k);
    if (r === undefined) {
      r = this.#findIssuer(cert);
      if (this.#issuerOf.size >= CACHE_MAX) this.#issuerOf.clear();
      this.#issuerOf.set(k, r);
    }
    return r;
  }

  #findIssuer(cert: Certificate): number {
    const akid = authorityKeyId(cert);
    for (let i = 0; i < this.chain.length; i++) {
      const ca = this.chain[i]!;
      if (!bytesEqual(ca.subjectRaw, cert.issuerRaw)) continue;
      if (akid) {
        const skid = subjectKeyId(ca);
        if (skid && !bytesEqual(skid, akid)) continue;
      }
      if (issuerProblem(ca) !== null) continue;
      let key;
      try {
        key = certPublicKey(ca);
      } catch {
        continue;
      }
      if (isSignedBy(cert, key)) return i;
    }
    return -1;
  }
}

const CACHE_MAX = 4096;
const derKey = (der: Uint8Array) => Buffer.from(der.buffer, der.byteOffset, der.length).toString('latin1');
const parsed = new Map<string, Certificate>();

/**
 * parseCertificate, remembered by DER (bounded): a certificate that many signatures carry is read
 * once. The bytes are copied, so a caller reusing its buffer cannot change a remembered one.
 * Parse failures are not remembered.
 */
export function parseCertificateOnce(der: Uint8Array): Certificate {
  const k = derKey(der);
  let c = parsed.get(k);
  if (!c) {
    c = parseCertificate(new Uint8Array(der));
    if (parsed.size >= CACHE_MAX) parsed.clear();
    parsed.set(k, c);
  }
  return c;
}

function issuerProblem(issuer: Certificate): string | null {
  const bc = basicConstraints(issuer);
  if (!bc?.ca) return 'issuer is not a CA certificate';
  const ku = keyUsage(issuer);
  if (ku && !ku.has('keyCertSign')) return 'issuer key usage lacks keyCertSign';
  return null;
}

function checkLink(child: Certificate, issuer: Certificate): string | null {
  if (!bytesEqual(child.issuerRaw, issuer.subjectRaw)) return 'issuer name does not match the next certificate in the trusted chain';
  const p = issuerProblem(issuer);
  if (p) return p;
  let key;
  try {
    key = certPublicKey(issuer);
  } catch {
    return 'issuer public key is not supported';
  }
  if (!isSignedBy(child, key)) return 'certificate signature does not verify under the next certificate in the trusted chain';
  return null;
}

export interface PathCheck {
  /** The issuer index in the authority chain (path = leaf, chain[issuer..]). */
  issuer: number;
}

/**
 * Time-dependent checks of the path leaf -> chain[issuer] -> ... -> anchor at time `t`:
 * authority validFor, every certificate's validity, and path lengths. Returns the reason for
 * failure or null.
 */
export function checkPathAt(auth: Authority, leaf: Certificate, issuer: number, t: Date): string | null {
  if (!inRange(auth.source.validFor, t))
    return `${authorityWindow(auth)}, ${auth.kind === 'TSA' ? 'genTime' : 'signing time'} ${t.toISOString()}`;
  if (!certValidAt(leaf, t)) {
    return `certificate is not valid at ${t.toISOString()} (valid ${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()})`;
  }
  for (let i = issuer; i < auth.chain.length; i++) {
    const c = auth.chain[i]!;
    if (!certValidAt(c, t))
      return `CA certificate ${describe(c)} is valid ${c.notBefore.toISOString()}..${c.notAfter.toISOString()}, not at ${t.toISOString()}`;
  }
  return null;
}

/**
 * Time-independent checks of the issuing part of the path: links (cached), path lengths, no
 * unhandled critical extensions, EKU nesting for `eku`.
 */
export function checkIssuingPath(auth: Authority, issuer: number, eku: string): string | null {
  const links = auth.linksFrom(issuer);
  if (links !== null) return links;
  for (let i = issuer; i < auth.chain.length; i++) {
    const c = auth.chain[i]!;
    const crit = unhandledCriticalExtension(c);
    if (crit) return `CA certificate ${describe(c)} has an unhandled critical extension ${crit}`;
    const bc = basicConstraints(c);
    // Intermediates strictly between the leaf and this certificate.
    const below = i - issuer;
    if (bc?.pathLen !== undefined && below > bc.pathLen) return `path length constraint of ${describe(c)} exceeded`;
    // EKU nesting (Go checks every certificate of the chain): a CA that restricts EKUs must
    // allow the requested one.
    const ekus = extendedKeyUsage(c);
    if (ekus && !ekus.includes(eku) && !ekus.includes(OID.anyExtendedKeyUsage))
      return `CA certificate ${describe(c)} does not allow extended key usage ${eku}`;
  }
  return null;
}

/** "CA <name> is valid <window>" (or TSA): how a failure names an authority outside its validFor. */
export function authorityWindow(auth: Authority): string {
  return `${auth.kind} ${auth.name} is valid ${formatWindow(auth.source.validFor)}`;
}

export function describe(c: Certificate): string {
  const cn = c.subject[OID.commonName];
  const o = c.subject[OID.organizationName];
  return JSON.stringify([o, cn].filter(Boolean).join('/') || 'unnamed');
}
