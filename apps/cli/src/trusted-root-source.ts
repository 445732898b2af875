// Where a trusted root was named explicitly: --trusted-root, then WAXSEAL_TRUSTED_ROOT, then
// SIGSTORE_TRUSTED_ROOT. Its own module (no imports) so that verify-blob can resolve it without
// loading config.ts, which needs the signing client for the installed root's folder.
export function explicitTrustedRootPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag || env.WAXSEAL_TRUSTED_ROOT || env.SIGSTORE_TRUSTED_ROOT || undefined; // an empty value counts as unset
}
