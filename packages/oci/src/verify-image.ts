// Verification of an image's attachments: pure and synchronous over what image.ts collected.
// Each attachment is a Sigstore bundle (native, or converted from a legacy layer) verified by the
// ordinary verifier against the image digest; legacy simple-signing payloads must also name it.
import { WaxsealError, fromHex } from '@waxseal/core';
import type { Artifact, VerificationPolicy, VerificationResult, Verifier } from '@waxseal/verify';
import { COSIGN, parseSimpleSigning } from './cosign.ts';
import type { Attachment } from './image.ts';

export interface VerifiedAttachment {
  format: 'bundle' | 'legacy';
  location: string;
  result: VerificationResult;
  /** Legacy signatures: the simple-signing payload's optional section (user annotations). */
  optional?: Record<string, unknown> | null;
}

export interface ImageVerification {
  digest: string;
  verified: VerifiedAttachment[];
  /** Attachments that did not verify, with why (reported beside the verified ones). */
  failures: { format: 'bundle' | 'legacy'; location: string; error: WaxsealError }[];
}

export interface ImageVerifyOptions {
  /** The digest the image reference resolved to: every signature must be for it. */
  digest: string;
  policy: VerificationPolicy;
  /** 'signature': cosign sign's output; 'attestation': DSSE statements (of `policy.predicateType` when set). */
  kind: 'signature' | 'attestation';
  /** Names the image in messages. */
  image: string;
}

function digestArtifact(digest: string): Artifact {
  return { digest: { algorithm: 'sha256', value: fromHex(digest.slice('sha256:'.length), 'image digest') } };
}

function verifyOne(verifier: Verifier, a: Attachment, o: ImageVerifyOptions): VerifiedAttachment {
  if (a.error) throw a.error;
  const bundle = a.bundle!;
  if (o.kind === 'signature' && a.format === 'legacy') {
    // The signature covers the payload; the payload names the image.
    const result = verifier.verify(bundle, { bytes: a.payload! }, o.policy);
    const p = parseSimpleSigning(a.payload!);
    if (p.type !== COSIGN.signatureType) {
      throw new WaxsealError(
        'ERR_VERIFY_ARTIFACT',
        `the signed payload's type is ${JSON.stringify(p.type)}, not a cosign image signature`,
        {
          check: 'image.payload',
        },
      );
    }
    if (p.dockerManifestDigest !== o.digest) {
      throw new WaxsealError('ERR_VERIFY_ARTIFACT', `the signature is for ${p.dockerManifestDigest}, not for ${o.digest}`, {
        check: 'image.digest',
      });
    }
    return { format: a.format, location: a.location, result, optional: p.optional };
  }
  if (bundle.content.type !== 'dsseEnvelope') {
    throw new WaxsealError('ERR_VERIFY_DSSE', 'the bundle holds a message signature, not a signed statement about the image', {
      check: 'dsse.envelope',
    });
  }
  const policy = o.kind === 'signature' ? { ...o.policy, predicateType: COSIGN.signPredicateType } : o.policy;
  const result = verifier.verify(bundle, digestArtifact(o.digest), policy);
  return { format: a.format, location: a.location, result };
}

/**
 * Verifies every attachment and returns those that verified (and why the others did not);
 * throws when none did: the first failure, or "no signatures" when there was nothing to check.
 */
export function verifyImageAttachments(verifier: Verifier, attachments: Attachment[], o: ImageVerifyOptions): ImageVerification {
  const out: ImageVerification = { digest: o.digest, verified: [], failures: [] };
  for (const a of attachments) {
    try {
      out.verified.push(verifyOne(verifier, a, o));
    } catch (e) {
      if (!(e instanceof WaxsealError)) throw e;
      out.failures.push({ format: a.format, location: a.location, error: e });
    }
  }
  if (out.verified.length) return out;
  const what = o.kind === 'signature' ? 'signatures' : `attestations${o.policy.predicateType ? ` of type ${o.policy.predicateType}` : ''}`;
  if (out.failures.length === 0) {
    throw new WaxsealError('ERR_VERIFY_THRESHOLD', `no ${what} found for ${o.image}@${o.digest}`, { check: 'image.signatures' });
  }
  const first = out.failures[0]!;
  const more = out.failures.length > 1 ? ` (and ${out.failures.length - 1} more that failed)` : '';
  throw new WaxsealError(
    first.error.code,
    `no valid ${what} for ${o.image}@${o.digest}: ${first.location}: ${first.error.message}${more}`,
    {
      ...(first.error.check ? { check: first.error.check } : {}),
      detail: {
        failures: out.failures.map((f) => ({ location: f.location, code: f.error.code, check: f.error.check, message: f.error.message })),
      },
    },
  );
}
