// Public surface of oci: the registry client, image references, cosign's storage formats, and
// image signing/verification helpers over them.
export {
  DOCKER_HUB,
  apiHost,
  formatReference,
  isDigest,
  isLoopbackRegistry,
  parseReference,
  parseRepository,
  type ImageReference,
} from './reference.ts';
export {
  EMPTY_JSON,
  INDEX_MEDIA_TYPES,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  MAX_INDEX_ENTRIES,
  MAX_LAYERS,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  checkDigest,
  digestOf,
  parseManifest,
  serializeIndex,
  serializeManifest,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
} from './manifest.ts';
export { parseChallenge, type Challenge } from './challenge.ts';
export { defaultCredentials, type Credential, type CredentialSource } from './credentials.ts';
export { RegistryClient, type FetchedManifest, type ReferrersResult, type RegistryOptions, type Repo } from './registry.ts';
export {
  COSIGN,
  attestationStatement,
  bundleReferrerManifest,
  legacyAnnotations,
  legacyAttestationLayer,
  legacyLayerToBundle,
  legacyMaterialFromBundle,
  legacySignatureImage,
  legacyTag,
  parseDsseEnvelope,
  parseLegacyAnnotations,
  parseSimpleSigning,
  serializeDsseEnvelope,
  signStatement,
  simpleSigningPayload,
  type BundleContentKind,
  type LegacyLayer,
  type LegacySignatureMaterial,
  type LegacySuffix,
  type SimpleSigning,
} from './cosign.ts';
export {
  MAX_ATTACHMENTS,
  MAX_SIGNATURE_BLOB_BYTES,
  attachBundle,
  attachLegacy,
  dockerReference,
  findBundles,
  findLegacy,
  listAttached,
  resolveChildren,
  resolveImage,
  signatureRepo,
  type AttachResult,
  type Attachment,
  type ResolvedImage,
} from './image.ts';
export { verifyImageAttachments, type ImageVerification, type ImageVerifyOptions, type VerifiedAttachment } from './verify-image.ts';
