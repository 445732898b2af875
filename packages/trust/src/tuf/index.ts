// TUF: publish Waxseal's trust material as a TUF repository and read it back with a TUF client.
export * from './metadata.ts';
export * from './repository.ts';
export { TufService, type TufServiceOptions } from './service.ts';
export { loadTrustFromTuf, TRUSTED_ROOT_TARGET, SIGNING_CONFIG_TARGETS, type LoadTrustFromTufOptions, type TufTrust } from './client.ts';
