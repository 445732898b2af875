// cosign's predicate-type aliases (options/predicate.go), so that `--type slsaprovenance1` means
// on attest-blob and verify-blob-attestation what it means to cosign.
import { UsageError } from './ui.ts';

export const PREDICATE_TYPE_ALIASES: Readonly<Record<string, string>> = {
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
};

/** cosign's default --type. */
export const DEFAULT_PREDICATE_TYPE = 'custom';

/**
 * An alias expanded to its URI; anything else must be a URI (absolute, or an absolute path, as Go's
 * url.ParseRequestURI accepts), else it is refused as cosign refuses it.
 */
export function expandPredicateType(t: string): string {
  if (Object.hasOwn(PREDICATE_TYPE_ALIASES, t)) return PREDICATE_TYPE_ALIASES[t]!;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\S*$/.test(t) || /^\/\S*$/.test(t)) return t;
  throw new UsageError(
    `invalid predicate type ${JSON.stringify(t)}: use a URI or one of ${Object.keys(PREDICATE_TYPE_ALIASES).join(', ')}`,
  );
}
