// Public surface of trust.
export {
  authorityEntry,
  signingConfig,
  trustedRoot,
  type CertificateAuthorityJson,
  type ServiceJson,
  type SigningConfigJson,
  type TransparencyLogJson,
  type TrustedRootJson,
} from './documents.ts';
export { publishTrustDocuments } from './publish.ts';
export { loadTrustFromTuf } from './tuf/index.ts';
