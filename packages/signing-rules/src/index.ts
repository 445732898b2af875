// Public surface of signing-rules.
export { parseSigningRules, signingAuthorizer, type SigningRules } from './signing-rules.ts';
