// The CA certificate chain: start-up checks (the chain really belongs to the signing key, links
// verify, CA constraints hold, EKU chaining allows code signing), creation of a root and an
// issuing intermediate for `waxseal ca init`, an ephemeral chain for dev and tests, and a PKCS#10
// CSR for an intermediate whose key stays in an HSM/KMS so an external CA can certify it.
import {
  WaxsealError,
  encodePem,
  bitString,
  ctx,
  oid as derOid,
  integer,
  seq,
  setOf,
  OID,
  publicKeyFromSpki,
  encodeExtension,
  ext,
  simpleName,
  parseCertificatesPem,
  basicConstraints,
  keyUsage,
  extendedKeyUsage,
  subjectKeyId,
  authorityKeyId,
  isSignedBy,
  certPublicKey,
  bytesEqual,
  concat,
  type Certificate,
} from '@waxseal/core';
import {
  generateSigner,
  selfSignedRoot,
  intermediateCa,
  signatureAlgorithmIdentifier,
  type GeneratedKeyKind,
  type KeyObjectSigner,
  type Signer,
} from '@waxseal/keys';
import { checkKeyStrength } from './keycheck.ts';

export interface CaChain {
  /** Issuing CA first, root last. */
  readonly certificates: readonly Certificate[];
  /** The same certificates as PEM, in the same order. */
  readonly pems: readonly string[];
}

const MAX_CHAIN = 10;
const YEAR_MS = 365 * 86_400_000;

function chainError(message: string): never {
  throw new WaxsealError('ERR_CHAIN_INVALID', message);
}

function describe(cert: Certificate, i: number, n: number): string {
  const role = i === n - 1 ? 'root' : i === 0 ? 'issuing CA' : 'intermediate';
  const cn = cert.subject[OID.commonName];
  return `certificate ${i + 1} of ${n} (${role}${cn ? ` "${cn}"` : ''})`;
}

/**
 * Checks a CA chain for `signer` as Fulcio's VerifyCertChain does, and more precisely: throws
 * ERR_CHAIN_INVALID naming the certificate and the rule it breaks.
 */
export function validateCaChain(signer: Pick<Signer, 'publicKeySpki'>, chain: readonly Certificate[], now: Date = new Date()): void {
  const n = chain.length;
  if (n === 0) chainError('the CA chain is empty');
  if (n > MAX_CHAIN) chainError(`the CA chain has ${n} certificates; at most ${MAX_CHAIN} are supported`);

  let signerKey;
  try {
    signerKey = publicKeyFromSpki(signer.publicKeySpki);
    checkKeyStrength(signerKey);
  } catch (e) {
    chainError(`the CA signing key is not acceptable: ${e instanceof Error ? e.message : String(e)}`);
  }
  let firstKey;
  try {
    firstKey = certPublicKey(chain[0]!);
  } catch (e) {
    chainError(`${describe(chain[0]!, 0, n)} has an unsupported public key: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!firstKey.key.equals(signerKey.key))
    chainError(`${describe(chain[0]!, 0, n)} is not for the CA signing key: its public key differs from the signer's`);

  for (let i = 0; i < n; i++) {
    const cert = chain[i]!;
    const what = describe(cert, i, n);
    if (cert.version !== 3) chainError(`${what} is not an X.509 v3 certificate`);
    if (now < cert.notBefore) chainError(`${what} is not valid before ${cert.notBefore.toISOString()}`);
    if (now > cert.notAfter) chainError(`${what} expired on ${cert.notAfter.toISOString()}`);
    const bc = basicConstraints(cert);
    if (!bc?.ca) chainError(`${what} is not a CA: BasicConstraints CA:TRUE is missing`);
    const ku = keyUsage(cert);
    if (!ku?.has('keyCertSign')) chainError(`${what} may not sign certificates: KeyUsage keyCertSign is missing`);
    // pathLen counts the CA certificates below this one (the leaf is not counted).
    if (bc.pathLen !== undefined && i > bc.pathLen) chainError(`${what} has pathLen ${bc.pathLen} but ${i} CA certificate(s) below it`);
    const eku = extendedKeyUsage(cert);
    if (eku && !eku.includes(OID.kpCodeSigning) && !eku.includes(OID.anyExtendedKeyUsage)) {
      chainError(`${what} lists extended key usages without codeSigning, so it cannot issue code-signing certificates`);
    }
  }
  if (n > 1 && !extendedKeyUsage(chain[0]!)?.includes(OID.kpCodeSigning)) {
    chainError(`${describe(chain[0]!, 0, n)} must carry the codeSigning extended key usage (EKU chaining) when it is not the root`);
  }
  if (!subjectKeyId(chain[0]!))
    chainError(`${describe(chain[0]!, 0, n)} has no SubjectKeyIdentifier (leaves need it for their AuthorityKeyIdentifier)`);

  for (let i = 0; i < n - 1; i++) {
    const cert = chain[i]!;
    const parent = chain[i + 1]!;
    const what = describe(cert, i, n);
    if (!bytesEqual(cert.issuerRaw, parent.subjectRaw))
      chainError(`${what} was not issued by ${describe(parent, i + 1, n)}: its issuer name differs from the next certificate's subject`);
    const akid = authorityKeyId(cert);
    const pskid = subjectKeyId(parent);
    if (akid && pskid && !bytesEqual(akid, pskid))
      chainError(`${what} names a different authority key id than ${describe(parent, i + 1, n)}'s subject key id`);
    let parentKey;
    try {
      parentKey = certPublicKey(parent);
    } catch (e) {
      chainError(`${describe(parent, i + 1, n)} has an unsupported public key: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!isSignedBy(cert, parentKey)) chainError(`${what}'s signature does not verify under ${describe(parent, i + 1, n)}'s key`);
  }
  const root = chain[n - 1]!;
  if (!bytesEqual(root.issuerRaw, root.subjectRaw))
    chainError(`${describe(root, n - 1, n)} is not self-issued: the last certificate of the chain must be the root`);
  if (!isSignedBy(root, certPublicKey(root)))
    chainError(`${describe(root, n - 1, n)} is not self-signed: its signature does not verify under its own key`);
}

/** Parses a PEM chain (issuing CA first, root last) and validates it for `signer`. */
export function loadCaChain(signer: Pick<Signer, 'publicKeySpki'>, chainPem: string, now: Date = new Date()): CaChain {
  let certificates: Certificate[];
  try {
    certificates = parseCertificatesPem(chainPem);
  } catch (e) {
    chainError(`the CA chain could not be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
  validateCaChain(signer, certificates, now);
  return { certificates, pems: certificates.map((c) => encodePem('CERTIFICATE', c.der)) };
}

/** Wraps already-parsed certificates, validating them for `signer`. */
export function caChainFromCertificates(
  signer: Pick<Signer, 'publicKeySpki'>,
  certificates: readonly Certificate[],
  now: Date = new Date(),
): CaChain {
  validateCaChain(signer, certificates, now);
  return { certificates: [...certificates], pems: certificates.map((c) => encodePem('CERTIFICATE', c.der)) };
}

export interface InitCaOptions {
  /** The issuing intermediate's key (file, HSM, KMS...). */
  intermediateSigner: Signer;
  /** Key kind of the generated root (P-384 recommended, as Sigstore uses). Ignored with rootSigner. */
  rootKind?: GeneratedKeyKind;
  /** Use this root key instead of generating one (the root PEM key is then not returned). */
  rootSigner?: Signer;
  organization: string;
  rootCommonName?: string;
  intermediateCommonName?: string;
  rootValidityYears?: number;
  intermediateValidityYears?: number;
  /** Encrypts the returned root private key PEM. */
  rootKeyPassphrase?: string;
  now?: Date;
}

export interface InitCaResult {
  root: Certificate;
  intermediate: Certificate;
  rootPem: string;
  intermediatePem: string;
  /** intermediate + root, the chain file the CA serves. */
  chainPem: string;
  /** PKCS#8 PEM of a generated root key: store it offline. Absent when rootSigner was given. */
  rootKeyPem?: string;
}

/** Creates a self-signed root (10 years) and an issuing intermediate (EKU codeSigning, pathLen 0). */
export async function initCaChain(opts: InitCaOptions): Promise<InitCaResult> {
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - 60_000);
  const generated = opts.rootSigner ? undefined : generateSigner(opts.rootKind ?? 'ecdsa-p384', 'memory://root');
  const rootSigner = opts.rootSigner ?? generated!;
  const rootYears = opts.rootValidityYears ?? 10;
  const root = await selfSignedRoot(rootSigner, {
    organization: opts.organization,
    commonName: opts.rootCommonName ?? `${opts.organization} code-signing root CA`,
    notBefore,
    notAfter: new Date(now.getTime() + rootYears * YEAR_MS),
    pathLen: 1,
  });
  const interNotAfter = new Date(
    Math.min(root.notAfter.getTime(), now.getTime() + (opts.intermediateValidityYears ?? rootYears) * YEAR_MS),
  );
  const intermediate = await intermediateCa(opts.intermediateSigner.publicKeySpki, rootSigner, root, {
    organization: opts.organization,
    commonName: opts.intermediateCommonName ?? `${opts.organization} code-signing intermediate CA`,
    notBefore,
    notAfter: interNotAfter,
    pathLen: 0,
    extKeyUsage: [OID.kpCodeSigning],
  });
  validateCaChain(opts.intermediateSigner, [intermediate, root], now);
  const rootPem = encodePem('CERTIFICATE', root.der);
  const intermediatePem = encodePem('CERTIFICATE', intermediate.der);
  const result: InitCaResult = { root, intermediate, rootPem, intermediatePem, chainPem: intermediatePem + rootPem };
  if (generated) result.rootKeyPem = (generated as KeyObjectSigner).exportPkcs8Pem(opts.rootKeyPassphrase);
  return result;
}

export interface EphemeralCa {
  signer: KeyObjectSigner;
  /** Issuing intermediate first, root last. */
  chain: Certificate[];
  chainPem: string;
  rootPem: string;
}

/** An in-memory P-256 root and intermediate, for dev mode and tests only. */
export async function ephemeralCa(opts: { organization?: string; kind?: GeneratedKeyKind; now?: Date } = {}): Promise<EphemeralCa> {
  const signer = generateSigner(opts.kind ?? 'ecdsa-p256', 'memory://ephemeral-ca');
  const r = await initCaChain({
    intermediateSigner: signer,
    rootKind: opts.kind ?? 'ecdsa-p256',
    organization: opts.organization ?? 'waxseal ephemeral',
    rootValidityYears: 1,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { signer, chain: [r.intermediate, r.root], chainPem: r.chainPem, rootPem: r.rootPem };
}

/**
 * A PKCS#10 CSR (PEM) for an intermediate CA whose key `signer` holds, so an external CA can
 * certify it. It requests the extensions a Fulcio-style issuing CA needs (CA:TRUE pathLen 0,
 * keyCertSign/cRLSign, EKU codeSigning); the external CA decides what it actually grants.
 */
export async function writeCsr(
  signer: Signer,
  subject: { organization?: string; commonName: string },
  opts: { requestCaExtensions?: boolean } = {},
): Promise<string> {
  const extensions =
    opts.requestCaExtensions === false
      ? []
      : [
          ext.basicConstraints(true, 0),
          ext.keyUsage(['keyCertSign', 'cRLSign']),
          ext.extKeyUsage([OID.kpCodeSigning]),
          ext.subjectKeyId(signer.publicKeySpki),
        ];
  const attributes = extensions.length ? [seq(derOid(OID.pkcs10ExtensionRequest), setOf(seq(...extensions.map(encodeExtension))))] : [];
  // attributes [0] IMPLICIT SET OF Attribute: the SET's contents under a context tag, in DER order.
  const info = seq(
    integer(0),
    simpleName(subject.organization, subject.commonName),
    signer.publicKeySpki,
    ctx(0, concat(...attributes.sort((a, b) => Buffer.compare(a, b)))),
  );
  const sigAlg = signatureAlgorithmIdentifier(signer);
  const signature = await signer.sign(info);
  return encodePem('CERTIFICATE REQUEST', seq(info, sigAlg, bitString(signature)));
}
