// Public surface of admission: the webhook server and its policy sources.
export { PolicyEngine, type EngineOptions, type ImageCheck, type ImageVerdict } from './engine.ts';
export {
  AdmissionHandler,
  DEFAULT_DEADLINE_MS,
  MUTATE_PATHS,
  VALIDATE_PATHS,
  serveAdmission,
  startAdmissionServer,
  type AdmissionServerOptions,
  type ReviewLog,
  type RunningAdmissionServer,
  type StartAdmissionOptions,
  type StartedAdmissionServer,
} from './server.ts';
export {
  DirectorySource,
  StaticSource,
  readPolicyDir,
  type GenerationalStore,
  type PolicyDocument,
  type PolicySource,
  type SourceStatus,
} from './sources.ts';
export { KubeSource, type KubeSourceOptions } from './kube-source.ts';
export { TlsReloader, readTlsPair, type TlsFiles, type TlsPair } from './tls.ts';
export { registryResolver, type DigestResolver } from './resolve.ts';
export { credentialsFromPullSecrets } from './pull-secrets.ts';
export type { AdmissionEngine } from './contract.ts';
export { tufTrustRootLoader, type TufLoaderOptions } from './engine-tuf.ts';
