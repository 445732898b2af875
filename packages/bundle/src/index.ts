// Sigstore client-facing documents: types, JSON codecs, limits and service selection.
export * from './types.ts';
export * from './limits.ts';
export {
  parseBundle,
  parseBundleJson,
  serializeBundle,
  serializeBundleJson,
  serializeTransparencyLogEntry,
  parseTransparencyLogEntry,
  bundleVersion,
  bundleLeafCertificate,
  bundleSignatureBytes,
} from './bundle.ts';
export { parseTrustedRoot, parseTrustedRootJson, serializeTrustedRoot, parseTimeRange, serializeTimeRange } from './trusted-root.ts';
export {
  parseSigningConfig,
  parseSigningConfigJson,
  serializeSigningConfig,
  parseClientTrustConfig,
  parseClientTrustConfigJson,
  serializeClientTrustConfig,
  selectServices,
  selectService,
  selectServicesByConfig,
  DEFAULT_SUPPORTED_API_VERSIONS,
  type SelectedServices,
  type SupportedApiVersions,
} from './signing-config.ts';
export { parseTimestamp, formatTimestamp, type Where } from './json.ts';
export { buildCertificateAuthority, buildTransparencyLog, buildRekorLogs, buildTrustedRoot, buildSigningConfig } from './build.ts';
