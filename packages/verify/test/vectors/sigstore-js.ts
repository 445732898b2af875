// Runs a vector case through sigstore-js (@sigstore/verify with the same trusted root, policy and
// thresholds) for the cross-check test and the benchmark.
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot as ProtoTrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier as JsVerifier, toSignedEntity, toTrustMaterial, type VerificationPolicy as JsPolicy } from '@sigstore/verify';
import { decodePem } from '../../../core/src/pem.ts';
import type { VectorCase } from './load.ts';

/** Whether sigstore-js can express the case in-process: it cannot verify a message signature by digest only. */
export function jsCanRun(c: VectorCase): boolean {
  const b = JSON.parse(c.bundleText) as { messageSignature?: unknown };
  return !(b.messageSignature && c.artifact && 'digest' in c.artifact);
}

export interface JsRunner {
  /** Verifies once; throws on rejection. */
  verify(): void;
}

/**
 * Prepares a sigstore-js verification of the case: parsing of the trusted root and the trust
 * material happen once; verify() parses the bundle and verifies, like our Verifier.verify path.
 * DSSE cases known by digest only are verified envelope-only (sigstore-js has no digest mode).
 */
export function jsRunner(c: VectorCase): JsRunner {
  const root = ProtoTrustedRoot.fromJSON(JSON.parse(c.trustedRootText));
  const bundleJson = JSON.parse(c.bundleText) as { verificationMaterial?: { publicKey?: { hint?: string } } };
  let keys: Parameters<typeof toTrustMaterial>[1];
  if (c.policy.publicKey) {
    const pem = c.policy.publicKey.publicKey;
    const der = typeof pem === 'string' ? decodePem(pem).der : pem;
    const hint = bundleJson.verificationMaterial?.publicKey?.hint ?? '';
    const vf = c.policy.publicKey.validFor;
    keys = {
      [hint]: {
        rawBytes: Buffer.from(der),
        keyDetails: 5, // PKIX_ECDSA_P256_SHA_256
        validFor: vf ? { start: vf.start, end: vf.end } : undefined,
      },
    } as unknown as Parameters<typeof toTrustMaterial>[1];
  }
  const trust = toTrustMaterial(root, keys);
  const o = c.json.verifierOptions;
  const verifier = new JsVerifier(trust, {
    tlogThreshold: o.tlogThreshold,
    ctlogThreshold: o.ctlogThreshold,
    timestampThreshold: o.timestampThreshold,
  });
  const id = c.policy.identities?.[0];
  const policy: JsPolicy = id ? { subjectAlternativeName: id.subjectAlternativeName, extensions: { issuer: id.issuer! } } : {};
  const artifact = c.artifactBytes ? Buffer.from(c.artifactBytes) : undefined;
  return {
    verify() {
      const bundle = bundleFromJSON(JSON.parse(c.bundleText));
      verifier.verify(toSignedEntity(bundle, artifact), policy);
    },
  };
}
