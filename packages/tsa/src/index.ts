// Public surface of tsa.
export { checkTsaChain } from './chain.ts';
export { TsaService, type TsaAuditEvent } from './service.ts';
