// Tamper-evident audit log of every key use and refusal.
export * from './record.ts';
export {
  MemoryAuditStore,
  SqliteAuditStore,
  type AuditStore,
  type AuditListOptions as AuditStoreListOptions,
  type SqliteAuditStoreOptions,
} from './store.ts';
export {
  AuditLog,
  FileAuditAnchor,
  verifyAuditExport,
  type AuditAnchor,
  type AuditBaseLine,
  type AuditAnchorLine,
  type AuditLogOptions,
  type AuditOpenOptions,
  type AuditPruneDetail,
} from './log.ts';
export { AuditWriterThread } from './writer.ts';
export {
  auditList,
  auditVerify,
  auditExport,
  auditPrune,
  auditVerifyExport,
  type AuditListOptions,
  type AuditCliOptions,
  type AuditPruneOptions,
  type AuditPruneResult,
} from './cli.ts';
export { auditedSigner } from './signer.ts';
export {
  ANCHOR_STATEMENT_TYPE,
  anchorKeyOf,
  anchorKeysFromTrustedRoot,
  readSignedAnchor,
  signAnchor,
  signedAnchorBytes,
  verifySignedAnchor,
  type AnchorKey,
  type AnchorSigner,
  type AnchorStatement,
  type SignedAnchor,
} from './signed-anchor.ts';
