// X.509 verification material as Rekor v1 and v2 entries carry it: a PEM (or DER) PKIX public
// key, one certificate, or a PEM certificate chain (leaf first). Canonical form = PEM
// re-encoding (Rekor's CanonicalValue). Optional check that certificates chain to the instance's
// trusted CAs.
import { createHash, createPublicKey } from 'node:crypto';
import {
  WaxsealError,
  decodePemAll,
  encodePem,
  fromUtf8,
  bytesEqual,
  publicKeyFromSpki,
  parseCertificate,
  isSignedBy,
  basicConstraints,
  certPublicKey,
  subjectAltNames,
  type PublicKeyInfo,
  type Certificate,
} from '@waxseal/core';

export interface X509Material {
  /** The key that verifies signatures (the leaf's key for certificates). */
  key: PublicKeyInfo;
  /** Certificates, leaf first; empty for a bare public key. */
  certs: Certificate[];
  /** Canonical PEM (PUBLIC KEY block, or CERTIFICATE blocks). */
  canonicalPem: string;
}

const MAX_CHAIN = 10;

function invalid(message: string, cause?: unknown): never {
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', message, cause === undefined ? {} : { cause });
}

/** Re-encodes a key in Go's MarshalPKIXPublicKey form (our KeyObject export is canonical DER). */
function canonicalSpki(spki: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }));
  } catch (e) {
    invalid('public key is not a valid SubjectPublicKeyInfo', e);
  }
}

function keyOf(spki: Uint8Array): PublicKeyInfo {
  try {
    return publicKeyFromSpki(spki);
  } catch (e) {
    invalid('unsupported or malformed public key', e);
  }
}

function cert(der: Uint8Array): Certificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    invalid('malformed X.509 certificate', e);
  }
}

/** Parses Rekor v1 `publicKey.content` (PEM bytes). */
export function parseX509Pem(content: Uint8Array): X509Material {
  const text = fromUtf8(content, 'public key').trim();
  let blocks;
  try {
    blocks = decodePemAll(text);
  } catch (e) {
    invalid('invalid public key: failure decoding PEM', e);
  }
  if (blocks.length === 0) invalid('invalid public key: failure decoding PEM');
  if (blocks.length > 1) {
    if (blocks.length > MAX_CHAIN) invalid(`certificate chain has more than ${MAX_CHAIN} certificates`);
    if (blocks.some((b) => b.label !== 'CERTIFICATE')) invalid('a PEM chain may only hold certificates');
    const certs = blocks.map((b) => cert(b.der));
    return { key: keyOf(certs[0]!.spki), certs, canonicalPem: certs.map((c) => encodePem('CERTIFICATE', c.der)).join('') };
  }
  const b = blocks[0]!;
  if (b.label === 'PUBLIC KEY') {
    const spki = canonicalSpki(b.der);
    return { key: keyOf(spki), certs: [], canonicalPem: encodePem('PUBLIC KEY', spki) };
  }
  if (b.label === 'CERTIFICATE') {
    const c = cert(b.der);
    return { key: keyOf(c.spki), certs: [c], canonicalPem: encodePem('CERTIFICATE', c.der) };
  }
  invalid(`invalid public key: cannot handle PEM type ${b.label}`);
}

// Clients reuse their key or certificate for many entries: parse each once (bounded cache).
const derCache = new Map<string, X509Material>();
const DER_CACHE_MAX = 4096;

/** Rekor v2 verifier material: DER SPKI or DER certificate. */
export function x509FromDer(der: Uint8Array, type: 'publicKey' | 'x509Certificate'): X509Material {
  const cacheKey = `${type}:${Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')}`;
  const hit = derCache.get(cacheKey);
  if (hit) return hit;
  const m = parseDerMaterial(der, type);
  if (derCache.size >= DER_CACHE_MAX) derCache.delete(derCache.keys().next().value!);
  derCache.set(cacheKey, m);
  return m;
}

function parseDerMaterial(der: Uint8Array, type: 'publicKey' | 'x509Certificate'): X509Material {
  if (type === 'publicKey') {
    const key = keyOf(der);
    if (!bytesEqual(canonicalSpki(der), der)) invalid('public key is not canonical DER');
    return { key, certs: [], canonicalPem: encodePem('PUBLIC KEY', der) };
  }
  const c = cert(der);
  if (!bytesEqual(c.der, der)) invalid('certificate has trailing data');
  return { key: keyOf(c.spki), certs: [c], canonicalPem: encodePem('CERTIFICATE', c.der) };
}

function validAt(c: Certificate, t: Date): boolean {
  return c.notBefore.getTime() <= t.getTime() && t.getTime() <= c.notAfter.getTime();
}

/**
 * Rekor v1 checks an uploaded chain: each certificate signed by the next, the last acting as
 * the trust anchor, all valid when the leaf became valid.
 */
export function checkUploadedChain(certs: readonly Certificate[]): void {
  if (certs.length < 2) return;
  const at = certs[0]!.notBefore;
  for (let i = 0; i + 1 < certs.length; i++) {
    const issuer = certs[i + 1]!;
    if (!bytesEqual(certs[i]!.issuerRaw, issuer.subjectRaw) || !isSignedBy(certs[i]!, certPublicKey(issuer)))
      invalid(`certificate ${i} of the chain is not issued by certificate ${i + 1}`);
    if (!basicConstraints(issuer)?.ca) invalid(`certificate ${i + 1} of the chain is not a CA`);
    if (!validAt(issuer, at)) invalid(`certificate ${i + 1} of the chain was not valid when the leaf was issued`);
  }
}

/**
 * The instance policy: when trusted CAs are configured, a certificate must chain to one of
 * them (intermediates may come from the uploaded chain or from the trusted list), every link
 * valid at the leaf's notBefore.
 */
export function checkTrustedChain(certs: readonly Certificate[], trusted: readonly Certificate[]): void {
  if (trusted.length === 0 || certs.length === 0) return;
  const leaf = certs[0]!;
  const at = leaf.notBefore;
  if (trusted.some((t) => bytesEqual(t.der, leaf.der))) return;
  const pool = [...certs.slice(1), ...trusted];
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const anchor = trusted.find(
      (t) => bytesEqual(t.subjectRaw, current.issuerRaw) && validAt(t, at) && isSignedBy(current, certPublicKey(t)),
    );
    if (anchor) return;
    const next = pool.find(
      (c) =>
        c !== current &&
        bytesEqual(c.subjectRaw, current.issuerRaw) &&
        basicConstraints(c)?.ca &&
        validAt(c, at) &&
        isSignedBy(current, certPublicKey(c)),
    );
    if (!next) break;
    current = next;
  }
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', 'certificate does not chain to a CA trusted by this log', { check: 'log.trusted-ca' });
}

const indexKeysCache = new WeakMap<X509Material, string[]>();

/** Search-index keys of the material: hex SHA-256 of the canonical PEM, then the leaf's SANs. */
export function materialIndexKeys(m: X509Material): string[] {
  let keys = indexKeysCache.get(m);
  if (!keys) {
    keys = [createHash('sha256').update(m.canonicalPem).digest('hex'), ...certSubjects(m)];
    indexKeysCache.set(m, keys);
  }
  return keys;
}

/** Lower-cased SAN values of the leaf (emails, URIs, DNS names, Fulcio OtherName). */
export function certSubjects(m: X509Material): string[] {
  const leaf = m.certs[0];
  if (!leaf) return [];
  try {
    return subjectAltNames(leaf).map((s) => s.value.toLowerCase());
  } catch {
    return [];
  }
}

/** Parses trusted CA certificates from PEM text(s). */
export function parseTrustedCas(pems: readonly string[]): Certificate[] {
  const out: Certificate[] = [];
  for (const pem of pems) {
    for (const b of decodePemAll(pem)) {
      if (b.label !== 'CERTIFICATE') continue;
      out.push(parseCertificate(b.der));
    }
  }
  return out;
}
