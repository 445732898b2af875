// The code-signing leaf exactly as Fulcio issues it: valid for ten minutes from now, empty
// subject, one critical SAN, KeyUsage digitalSignature (critical), EKU codeSigning, no
// BasicConstraints, AKID = the issuing CA's SKID, an SKID, a random positive 160-bit serial, and
// the Fulcio identity extensions (1.1 raw and 1.8 DER for the issuer, 1.2-1.6 raw, 1.9-1.23 and
// 1.24 as DER UTF8String). The builder is pure; signing goes through the CA Signer.
import { WaxsealError } from '../core/errors.ts';
import { encodePem } from '../core/pem.ts';
import { toHex } from '../core/bytes.ts';
import { OID, FULCIO_OID, FULCIO_RAW_STRING_OIDS, type FulcioExtensionName } from '../core/oids.ts';
import { assembleCertificate, encodeTbs, ext, randomSerial, type ExtensionSpec } from '../core/x509-build.ts';
import { subjectKeyId, type Certificate } from '../core/x509.ts';
import { KeyObjectSigner } from '../keys/memory.ts';
import { signatureAlgorithmIdentifier, type Signer } from '../keys/signer.ts';
import type { Principal } from './issuers.ts';

export const LEAF_VALIDITY_MS = 10 * 60_000;

// Extension order as Go's x509.CreateCertificate emits Fulcio's template, then its extra extensions.
const IDENTITY_EXTENSION_ORDER: readonly FulcioExtensionName[] = [
  'githubWorkflowTrigger',
  'githubWorkflowSha',
  'githubWorkflowName',
  'githubWorkflowRepository',
  'githubWorkflowRef',
  'buildSignerURI',
  'buildSignerDigest',
  'runnerEnvironment',
  'sourceRepositoryURI',
  'sourceRepositoryDigest',
  'sourceRepositoryRef',
  'sourceRepositoryIdentifier',
  'sourceRepositoryOwnerURI',
  'sourceRepositoryOwnerIdentifier',
  'buildConfigURI',
  'buildConfigDigest',
  'buildTrigger',
  'runInvocationURI',
  'sourceRepositoryVisibilityAtSigning',
  'deploymentEnvironment',
];

const EMPTY_NAME = Uint8Array.of(0x30, 0x00);
const KEY_USAGE = ext.keyUsage(['digitalSignature']);
const EXT_KEY_USAGE = ext.extKeyUsage([OID.kpCodeSigning]);
// Printable ASCII only: email and URI SANs are IA5Strings, and control characters have no place there.
const IA5_PRINTABLE = /^[\x21-\x7e]+$/;

function claimsError(message: string): never {
  throw new WaxsealError('ERR_IDENTITY_CLAIMS', message);
}

// A lone UTF-16 surrogate (possible in JSON claims) has no UTF-8 encoding.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(value: string, what: string): void {
  if (LONE_SURROGATE.test(value)) claimsError(`${what} is not well-formed Unicode`);
}

/** The leaf's extensions for `principal` and key `spki`, signed under the CA with key id `authorityKeyId`. */
export function leafExtensions(principal: Principal, spki: Uint8Array, authorityKeyId: Uint8Array): ExtensionSpec[] {
  const exts: ExtensionSpec[] = [KEY_USAGE, EXT_KEY_USAGE, ext.subjectKeyId(spki), ext.authorityKeyId(authorityKeyId)];
  const { san } = principal;
  if (!san.value) claimsError('the certificate subject alternative name is empty');
  checkText(san.value, 'subject alternative name');
  if (san.type === 'otherName') {
    exts.push(ext.subjectAltName([{ type: 'otherName', typeId: FULCIO_OID.otherName, value: san.value }], true));
  } else {
    if (!IA5_PRINTABLE.test(san.value)) claimsError(`subject alternative name ${JSON.stringify(san.value)} must be printable ASCII`);
    exts.push(ext.subjectAltName([{ type: san.type, value: san.value }], true));
  }
  if (!principal.issuer) claimsError('the certificate issuer extension would be empty');
  checkText(principal.issuer, 'issuer');
  exts.push(ext.raw(FULCIO_OID.issuerV1, principal.issuer));
  const add = (name: FulcioExtensionName, value: string | undefined) => {
    if (!value) return; // never emit empty values
    checkText(value, `extension ${name}`);
    const oid = FULCIO_OID[name];
    exts.push(FULCIO_RAW_STRING_OIDS.has(oid) ? ext.raw(oid, value) : ext.utf8(oid, value));
  };
  for (const name of IDENTITY_EXTENSION_ORDER.slice(0, 5)) add(name, principal.extensions[name]);
  exts.push(ext.utf8(FULCIO_OID.issuer, principal.issuer));
  for (const name of IDENTITY_EXTENSION_ORDER.slice(5)) add(name, principal.extensions[name]);
  add('tokenSubject', principal.subject);
  return exts;
}

export interface IssuedCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  /** Serial number, lower-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Issues leaves under one CA certificate. Everything constant per CA (signature algorithm,
 * issuer name, authority key id) is computed once.
 */
export class LeafIssuer {
  readonly signer: Signer;
  readonly caCertificate: Certificate;
  readonly #sigAlg: Uint8Array;
  readonly #akid: Uint8Array;
  readonly #sync: KeyObjectSigner | undefined;

  constructor(signer: Signer, caCertificate: Certificate) {
    const skid = subjectKeyId(caCertificate);
    if (!skid) throw new WaxsealError('ERR_CHAIN_INVALID', 'the issuing CA certificate has no SubjectKeyIdentifier');
    this.signer = signer;
    this.caCertificate = caCertificate;
    this.#sigAlg = signatureAlgorithmIdentifier(signer);
    this.#akid = skid;
    // In-memory keys sign synchronously: no promise hop per certificate.
    this.#sync = signer instanceof KeyObjectSigner ? signer : undefined;
  }

  /** The DER TBSCertificate for a leaf (pure; exposed for tests). */
  buildTbs(principal: Principal, spki: Uint8Array, now: Date, serial: Uint8Array = randomSerial()): { tbs: Uint8Array; notBefore: Date; notAfter: Date } {
    // X.509 times have whole seconds; report the values the certificate really holds.
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + LEAF_VALIDITY_MS);
    if (notBefore < this.caCertificate.notBefore || notBefore > this.caCertificate.notAfter) {
      throw new WaxsealError('ERR_CHAIN_INVALID', `the issuing CA certificate is not valid now (${this.caCertificate.notBefore.toISOString()} to ${this.caCertificate.notAfter.toISOString()})`);
    }
    const tbs = encodeTbs({
      serial,
      signatureAlgorithm: this.#sigAlg,
      issuer: this.caCertificate.subjectRaw,
      subject: EMPTY_NAME,
      notBefore,
      notAfter,
      spki,
      extensions: leafExtensions(principal, spki, this.#akid),
    });
    return { tbs, notBefore, notAfter };
  }

  async issue(principal: Principal, spki: Uint8Array, now: Date): Promise<IssuedCertificate> {
    const serial = randomSerial();
    const { tbs, notBefore, notAfter } = this.buildTbs(principal, spki, now, serial);
    let signature: Uint8Array;
    try {
      signature = this.#sync ? this.#sync.signSync(tbs) : await this.signer.sign(tbs);
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      throw new WaxsealError('ERR_SIGNER', 'the CA signing key failed to sign', { cause: e });
    }
    const der = assembleCertificate(tbs, this.#sigAlg, signature);
    return { der, pem: encodePem('CERTIFICATE', der), serial: toHex(serial), notBefore, notAfter };
  }
}
