// Public surface of trust.
// The documents themselves (TrustedRoot, SigningConfig) and their builders live in @waxseal/bundle.
export { publishTrustDocuments } from './publish.ts';
export { loadTrustFromTuf } from './tuf/index.ts';
