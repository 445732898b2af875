// The TSA certificate chain: the startup checks timestamp-authority makes before it will sign
// anything (sigstore/timestamp-authority pkg/x509/x509.go), and an ephemeral chain for dev mode and tests.
import {
  WaxsealError,
  isWaxsealError,
  bytesEqual,
  OID,
  publicKeyFromSpki,
  basicConstraints,
  certPublicKey,
  extendedKeyUsage,
  getExtension,
  isSelfIssued,
  isSignedBy,
  encodePem,
  type Certificate,
} from '@waxseal/core';
import { intermediateCa, selfSignedRoot, tsaLeaf, generateSigner, type GeneratedKeyKind, type KeyObjectSigner } from '@waxseal/keys';

const EKU_NAMES: Record<string, string> = {
  [OID.kpTimeStamping]: 'timeStamping',
  [OID.kpCodeSigning]: 'codeSigning',
  [OID.anyExtendedKeyUsage]: 'anyExtendedKeyUsage',
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
};

const ekuName = (o: string): string => (EKU_NAMES[o] ? `${EKU_NAMES[o]} (${o})` : o);

function describe(cert: Certificate, index: number, total: number): string {
  const role = index === 0 ? 'TSA leaf' : index === total - 1 ? 'root' : 'intermediate';
  const name = cert.subject[OID.commonName] ?? cert.subject[OID.organizationName] ?? 'unnamed';
  return `certificate ${index} (${role} "${name}")`;
}

function invalid(message: string): never {
  throw new WaxsealError('ERR_CHAIN_INVALID', `TSA certificate chain: ${message}`);
}

export interface TsaChainCheckOptions {
  /** Time at which every certificate must be valid (default: now). */
  now?: Date;
  /**
   * Require the timeStamping EKU on every intermediate (timestamp-authority's
   * --enforce-intermediate-eku, default true). Without it, an intermediate or root that carries
   * EKUs must still allow timeStamping or anyExtendedKeyUsage (X.509 EKU chaining).
   */
  enforceIntermediateEku?: boolean;
}

/**
 * Refuses a TSA chain that timestamp-authority would refuse at startup: fewer than two
 * certificates; a link whose issuer name or signature does not match; validity that does not
 * nest or does not cover `now`; a CA leaf or a non-CA issuer; a leaf whose only EKU is not a
 * critical id-kp-timeStamping; intermediates without timeStamping; a leaf key that is not the
 * signer's key. Throws ERR_CHAIN_INVALID with the precise reason.
 */
export function checkTsaChain(chain: readonly Certificate[], signerSpki: Uint8Array, opts: TsaChainCheckOptions = {}): void {
  try {
    checkTsaChainInner(chain, signerSpki, opts);
  } catch (e) {
    if (isWaxsealError(e) && e.code !== 'ERR_CHAIN_INVALID') invalid(`unreadable certificate content: ${e.message}`);
    throw e;
  }
}

function checkTsaChainInner(chain: readonly Certificate[], signerSpki: Uint8Array, opts: TsaChainCheckOptions): void {
  const n = chain.length;
  if (n < 2) invalid(`must contain at least two certificates (TSA leaf ... root), found ${n}`);
  const now = opts.now ?? new Date();
  const name = (i: number) => describe(chain[i]!, i, n);

  for (let i = 0; i < n; i++) {
    const cert = chain[i]!;
    if (now < cert.notBefore || now > cert.notAfter) {
      invalid(`${name(i)} is not valid at ${now.toISOString()} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`);
    }
    if (i === n - 1) {
      // The trust anchor need not be self-issued; when it is, its self-signature must hold.
      if (isSelfIssued(cert) && !isSignedBy(cert, certPublicKey(cert)))
        invalid(`${name(i)} is self-issued but its self-signature does not verify`);
      continue;
    }
    const parent = chain[i + 1]!;
    if (!bytesEqual(cert.issuerRaw, parent.subjectRaw))
      invalid(`${name(i)} was not issued by ${name(i + 1)}: its issuer name differs from that subject`);
    if (!isSignedBy(cert, certPublicKey(parent))) invalid(`the signature of ${name(i)} does not verify with the key of ${name(i + 1)}`);
    if (cert.notBefore < parent.notBefore || cert.notAfter > parent.notAfter) {
      invalid(`the validity of ${name(i)} does not nest inside the validity of ${name(i + 1)}`);
    }
  }

  // Every issuer is a CA; the leaf is not (RFC 3161 2.3: the TSA signs with an end-entity key).
  for (let i = 1; i < n; i++) {
    if (!basicConstraints(chain[i]!)?.ca) invalid(`${name(i)} is not a CA certificate (basicConstraints cA is not set)`);
  }
  const leaf = chain[0]!;
  if (basicConstraints(leaf)?.ca) invalid('the TSA leaf certificate must be an end-entity certificate, not a CA');

  // Exactly one EKU in total, counting unknown ones, and it is a critical id-kp-timeStamping.
  const ekus = extendedKeyUsage(leaf);
  if (ekus === undefined)
    invalid(`the TSA leaf certificate has no extended key usage; it needs exactly one, ${ekuName(OID.kpTimeStamping)}, marked critical`);
  if (ekus.length !== 1)
    invalid(`the TSA leaf certificate must have exactly one extended key usage, found ${ekus.length}: ${ekus.map(ekuName).join(', ')}`);
  if (ekus[0] !== OID.kpTimeStamping)
    invalid(`the TSA leaf certificate's extended key usage is ${ekuName(ekus[0]!)}, not ${ekuName(OID.kpTimeStamping)}`);
  if (!getExtension(leaf, OID.extKeyUsage)!.critical)
    invalid('the TSA leaf certificate must mark its extended key usage extension critical');

  const enforce = opts.enforceIntermediateEku ?? true;
  for (let i = 1; i < n; i++) {
    const usages = extendedKeyUsage(chain[i]!);
    if (enforce && i < n - 1 && !usages?.includes(OID.kpTimeStamping)) {
      invalid(`${name(i)} must carry the ${ekuName(OID.kpTimeStamping)} extended key usage to issue TSA certificates`);
    }
    if (usages && !usages.includes(OID.kpTimeStamping) && !usages.includes(OID.anyExtendedKeyUsage)) {
      invalid(`${name(i)} restricts extended key usage to ${usages.map(ekuName).join(', ')}, which excludes timeStamping`);
    }
  }

  if (!sameKey(leaf.spki, signerSpki)) invalid("the TSA leaf certificate's public key is not the signer's key");
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (bytesEqual(a, b)) return true;
  // Same key, different SPKI encoding (e.g. compressed point): compare the keys themselves.
  try {
    return publicKeyFromSpki(a).key.equals(publicKeyFromSpki(b).key);
  } catch {
    return false;
  }
}

/** The chain as `application/pem-certificate-chain`: leaf first, root last. */
export function chainToPem(chain: readonly Certificate[]): string {
  return chain.map((c) => encodePem('CERTIFICATE', c.der)).join('');
}

export interface DevTsaChainOptions {
  /** Key type of every certificate in the chain (default ecdsa-p256). */
  kind?: GeneratedKeyKind;
  organization?: string;
  commonName?: string;
  /** Put an intermediate CA (EKU timeStamping) between root and leaf. */
  intermediate?: boolean;
  /** Validity start (default: five minutes ago) and length (default: one year). */
  notBefore?: Date;
  validityDays?: number;
}

export interface DevTsaChain {
  signer: KeyObjectSigner;
  /** TSA leaf first, root last. */
  chain: Certificate[];
}

/** An ephemeral root (and optional intermediate) plus TSA leaf, for dev mode and tests. */
export async function generateDevTsaChain(opts: DevTsaChainOptions = {}): Promise<DevTsaChain> {
  const kind = opts.kind ?? 'ecdsa-p256';
  const organization = opts.organization ?? 'Waxseal dev';
  const commonName = opts.commonName ?? 'Waxseal dev TSA';
  // Whole seconds, so the encoded validity of every certificate is exactly the same window.
  const start = Math.floor((opts.notBefore ?? new Date(Date.now() - 5 * 60_000)).getTime() / 1000) * 1000;
  const notBefore = new Date(start);
  const notAfter = new Date(start + (opts.validityDays ?? 365) * 86_400_000);

  const rootSigner = generateSigner(kind, 'memory://ephemeral-tsa-root');
  const root = await selfSignedRoot(rootSigner, { organization, commonName: `${commonName} root`, notBefore, notAfter });
  let issuer = root;
  let issuerSigner = rootSigner;
  const chain: Certificate[] = [root];
  if (opts.intermediate) {
    const intSigner = generateSigner(kind, 'memory://ephemeral-tsa-intermediate');
    const int = await intermediateCa(intSigner.publicKeySpki, rootSigner, root, {
      organization,
      commonName: `${commonName} intermediate`,
      notBefore,
      notAfter,
      pathLen: 0,
      extKeyUsage: [OID.kpTimeStamping],
    });
    chain.unshift(int);
    issuer = int;
    issuerSigner = intSigner;
  }
  const signer = generateSigner(kind, 'memory://ephemeral-tsa');
  const leaf = await tsaLeaf(signer.publicKeySpki, issuerSigner, issuer, { organization, commonName, notBefore, notAfter });
  chain.unshift(leaf);
  return { signer, chain };
}
