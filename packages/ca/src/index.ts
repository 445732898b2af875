// Public surface of ca.
export { initCaChain, validateCaChain, writeCsr } from './chain.ts';
export { githubActionsIssuerConfig, issuerConfigFromObject, mergeIssuerConfigs, parseIssuerConfig, type IssuerConfig } from './issuers.ts';
export { CaService, loadIssuerConfigFile, type CaAuditEvent, type SigningRequestContext } from './service.ts';
