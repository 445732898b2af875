// Tamper-evident audit log of every key use and refusal.
export * from './record.ts';
export {
  MemoryAuditStore,
  SqliteAuditStore,
  type AuditStore,
  type AuditListOptions as AuditStoreListOptions,
  type SqliteAuditStoreOptions,
} from './store.ts';
export { AuditLog, FileAuditAnchor, verifyAuditExport, type AuditAnchor, type AuditLogOptions, type AuditOpenOptions } from './log.ts';
export { auditList, auditVerify, auditExport, auditVerifyExport, type AuditListOptions, type AuditCliOptions } from './cli.ts';
export { auditedSigner } from './signer.ts';
