// OIDC issuers: the configuration (issuers/config.ts), reading claims (issuers/claims.ts), the
// principal each issuer type derives from them (issuers/principals.ts, issuers/ci-providers.ts).
// Pure: no I/O. This module is the subsystem's surface for the rest of the package.
export {
  CI_EXTENSION_NAMES,
  ISSUER_TYPES,
  configurationView,
  issuerConfigFromObject,
  lookupIssuer,
  mergeIssuerConfigs,
  metaIssuerRegex,
  parseIssuerConfig,
  sameRegisteredDomain,
  type ChallengeClaim,
  type CiExtensionName,
  type CiProviderMetadata,
  type IssuerConfig,
  type IssuerType,
  type MetaIssuer,
  type OidcIssuer,
} from './issuers/config.ts';
export { isEmailAddress, joinUrlPath, parseJsonPath } from './issuers/claims.ts';
export { buildPrincipal, type Principal } from './issuers/principals.ts';
export { GITHUB_ACTIONS_ISSUER_URL, githubActionsIssuerConfig } from './issuers/ci-providers.ts';
