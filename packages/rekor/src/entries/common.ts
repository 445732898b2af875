// Shared pieces of the Rekor entry types: the admission policy, the result of canonicalizing a
// proposed entry, and strict JSON readers (protojson for v2, go-openapi style for v1).
import { WaxsealError, fromBase64, fromUtf8, defaultHash, type HashName, type PublicKeyInfo, type Certificate } from '@waxseal/core';
import type { SignatureVerifier } from '../verifier.ts';
import { checkTrustedChain, checkUploadedChain, type X509Material } from '../pki/x509.ts';

export interface EntryPolicy {
  /** When non-empty, certificates must chain to one of these (off by default, as in Rekor). */
  trustedCas: readonly Certificate[];
  /** Accept entries verified by a bare public key (not a certificate). Default true. */
  allowPublicKeys: boolean;
  /** Most signatures (and verifiers) in one DSSE/in-toto entry. Default 10. */
  maxSignatures: number;
  /** Largest DSSE envelope (v1 proposedContent.envelope / v2 payload). Default 1 MiB. */
  maxEnvelopeBytes: number;
  /** Largest inline artifact of a `rekord` entry. Default 8 MiB. */
  maxArtifactBytes: number;
  /** "kind/version" pairs accepted; all supported ones when undefined. */
  allowedTypes?: ReadonlySet<string>;
  /**
   * Accept Rekor v2 `dsse` 0.0.2 entries. Off by default: rekor-tiles dropped the type in v2.3.0
   * and current verifiers (sigstore-go, ours) reject such entries, so logging one would hand
   * the client a bundle nobody can verify. DSSE goes into v2 as a hashedrekord over the PAE.
   */
  acceptDsseV002?: boolean;
}

export const DEFAULT_POLICY: EntryPolicy = {
  trustedCas: [],
  allowPublicKeys: true,
  maxSignatures: 10,
  maxEnvelopeBytes: 1 << 20,
  maxArtifactBytes: 8 << 20,
};

export interface EntryContext {
  verifier: SignatureVerifier;
  policy: EntryPolicy;
}

/** A proposed entry after validation and canonicalization: ready to append. */
export interface CanonicalEntry {
  kind: string;
  apiVersion: string;
  /** JCS bytes: the leaf preimage and the v1 `body`. */
  body: Uint8Array;
  /** Search-index keys (lower case). */
  indexKeys: string[];
}

export function invalid(message: string, check?: string): never {
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', message, check === undefined ? {} : { check });
}

export function unsupportedType(message: string): never {
  throw new WaxsealError('ERR_LOG_ENTRY_TYPE', message);
}

export function checkTypeAllowed(policy: EntryPolicy, kind: string, version: string): void {
  if (policy.allowedTypes && !policy.allowedTypes.has(`${kind}/${version}`))
    unsupportedType(`entry type ${kind} ${version} is not accepted by this log`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a protojson message strictly: every key must be a known field (camelCase or its
 * original snake_case name), never both spellings; null means "unset". Unknown fields are
 * rejected, as rekor-tiles does (DiscardUnknown=false).
 */
export function protoMessage(v: unknown, what: string, fields: Record<string, string>): Record<string, unknown> {
  if (!isPlainObject(v)) invalid(`${what} must be a JSON object`);
  const byName = new Map<string, string>();
  for (const [camel, snake] of Object.entries(fields)) {
    byName.set(camel, camel);
    byName.set(snake, camel);
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const name = byName.get(k);
    if (!name) invalid(`unknown field ${JSON.stringify(k.slice(0, 64))} in ${what}`);
    if (name in out) invalid(`field ${name} given twice in ${what}`);
    if (val !== null) out[name] = val;
  }
  return out;
}

/** protojson `bytes`: standard or URL-safe base64, padding optional. */
export function protoBytes(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v) || v.replace(/=+$/, '').length % 4 === 1)
    invalid(`${what} is not valid base64`);
  return new Uint8Array(Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

export function protoString(v: unknown, what: string): string {
  if (typeof v !== 'string') invalid(`${what} must be a string`);
  return v;
}

/** v1 (go-openapi strfmt.Base64): standard base64. */
export function b64(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || v === '') invalid(`${what} is missing`);
  try {
    return fromBase64(v, what);
  } catch {
    invalid(`${what} is not valid base64`);
  }
}

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(v)) invalid(`${what} is missing or not an object`);
  return v;
}

export function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') invalid(`${what} is missing or not a string`);
  return v;
}

export function text(b: Uint8Array, what: string): string {
  try {
    return fromUtf8(b, what);
  } catch {
    invalid(`${what} is not valid UTF-8`);
  }
}

/** Certificates of the material must satisfy the uploaded-chain rules and the CA policy. */
export function admitX509(m: X509Material, policy: EntryPolicy): void {
  if (m.certs.length === 0) {
    if (!policy.allowPublicKeys) invalid('this log only accepts entries signed with certificates', 'log.public-key-not-allowed');
    return;
  }
  checkUploadedChain(m.certs);
  checkTrustedChain(m.certs, policy.trustedCas);
}

/** Hashes to try for a signature over a message: the key's default, then SHA-256 (Rekor v1). */
export function messageHashes(key: PublicKeyInfo): (HashName | undefined)[] {
  if (key.kind === 'ed25519') return [undefined];
  const d = defaultHash(key.kind);
  return d === 'sha256' ? ['sha256'] : [d, 'sha256'];
}

export function verifyMessageAnyHash(ctx: EntryContext, key: PublicKeyInfo, message: Uint8Array, sig: Uint8Array): boolean {
  return messageHashes(key).some((h) => ctx.verifier.verifyMessage(key, message, sig, h));
}
