// The key-based and policy parts of the image commands (image.ts): `--key <cosign.key>` signing
// (cosign's encrypted key file, password from COSIGN_PASSWORD or the terminal; the TSA and log of
// the signing config still apply) and `verify-attestation --policy <file>` with a CEL expression.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WaxsealError, type InTotoStatement } from '@waxseal/core';
import { COSIGN_KEY_LABEL, COSIGN_KEY_LABEL_OLD, KeyObjectSigner, loadSigningKey } from '@waxseal/keys';
import { signMessageWithKey, signStatementWithKey, type Bundle, type KeySignOptions, type SigningServices } from '@waxseal/sign';
import { celAllows, compileCel, type CelProgram } from '@waxseal/policy';
import type { ImageVerification } from '@waxseal/oci';
import { UsageError } from '../ui.ts';
import { cosignPassword } from './keypair.ts';

export const KEY_SIGNING_HELP = `
  --key <file>                    sign with this key instead of keylessly: a cosign encrypted key
                                  (generate-key-pair, import-key-pair); its password from
                                  COSIGN_PASSWORD or the terminal. The signing config's TSA still
                                  timestamps the signature, and its log records it unless
                                  --tlog-upload=false`;

export const POLICY_HELP = `
  --policy <file>                        a CEL expression every attestation must satisfy, over
                                         predicate (the statement's predicate, as JSON),
                                         predicateType and subject; e.g.
                                         predicate.buildType == 'https://example.com/ci@v1'.
                                         Waxseal takes CEL where cosign takes CUE or Rego: .cue
                                         and .rego files are refused`;

interface KeySigningValues {
  'signing-config'?: string | undefined;
  'timestamp-server-url'?: string | undefined;
  'rekor-url'?: string | undefined;
  'tlog-upload'?: boolean | undefined;
}

/** What image.ts signs with when --key is given: the same shape as keyless services, plus the two signing calls. */
export interface KeySigning {
  token: string;
  services: SigningServices;
  summary: Record<string, string>;
  signMessage(payload: Uint8Array): Promise<Bundle>;
  signStatement(statement: InTotoStatement): Promise<Bundle>;
}

export async function keySigning(v: KeySigningValues, keyFile: string): Promise<KeySigning> {
  let text: string;
  try {
    text = readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read --key ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  // The password is asked only for a file that is a cosign key (a plain key is refused first).
  const encrypted = text.includes(`BEGIN ${COSIGN_KEY_LABEL}-----`) || text.includes(`BEGIN ${COSIGN_KEY_LABEL_OLD}-----`);
  const password = encrypted ? await cosignPassword({ confirm: false }) : '';
  const signer = new KeyObjectSigner(
    loadSigningKey(text, () => password),
    `file://${resolve(keyFile)}`,
  );
  const config = await import('../config.ts');
  const r = config.resolveSigning({
    signingConfig: v['signing-config'],
    // No certificate is requested with a key: the CA's URL is not needed, only the TSA and log.
    fulcioUrl: 'about:blank',
    timestampServerUrl: v['timestamp-server-url'],
    rekorUrl: v['rekor-url'],
    tlogUpload: v['tlog-upload'] !== false,
    signingConfigDoc: await config.signingConfigFromTuf(v['signing-config']),
  });
  const o: KeySignOptions = { signer, tsaUrl: r.tsaUrl, ...(r.rekor ? { tlog: r.rekor } : {}) };
  return {
    token: '',
    services: { caUrl: '', tsaUrl: r.tsaUrl },
    summary: { key: keyFile, tsa: r.tsaUrl, ...(r.rekor ? { tlog: r.rekor.url } : {}) },
    signMessage: (payload) => signMessageWithKey(payload, o),
    signStatement: (statement) => signStatementWithKey(statement, o),
  };
}

/** Reads and compiles `--policy <file>` (a CEL expression); CUE and Rego files are refused by name. */
export function loadCelPolicy(path: string): CelProgram {
  if (/\.(cue|rego)$/i.test(path)) {
    throw new UsageError(`--policy ${path}: Waxseal's --policy takes a CEL expression, not CUE or Rego (cosign's languages)`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read --policy ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return compileCel(text, path);
}

/**
 * Applies the CEL policy to each verified attestation: one that fails it moves to the failures
 * with the reason. Throws when none is left (as verification throws when none verified).
 */
export function applyCelPolicy(program: CelProgram, out: ImageVerification, image: string): ImageVerification {
  const verified: ImageVerification['verified'] = [];
  const failures = [...out.failures];
  for (const x of out.verified) {
    const s = x.result.statement;
    const r = s
      ? celAllows(program, { predicate: s.predicate ?? null, predicateType: s.predicateType, subject: s.subject })
      : { ok: false as const, reason: 'no in-toto statement to evaluate' };
    if (r.ok) verified.push(x);
    else {
      failures.push({
        format: x.format,
        location: x.location,
        error: new WaxsealError('ERR_VERIFY_DSSE', `the attestation does not satisfy the policy: ${r.reason}`, { check: 'policy.cel' }),
      });
    }
  }
  if (verified.length === 0) {
    const first = failures.find((f) => f.error.check === 'policy.cel') ?? failures[0]!;
    throw new WaxsealError('ERR_VERIFY_DSSE', `no attestation of ${image} satisfies the policy ${program.what}: ${first.error.message}`, {
      check: 'policy.cel',
      detail: {
        failures: failures.map((f) => ({ location: f.location, code: f.error.code, check: f.error.check, message: f.error.message })),
      },
    });
  }
  return { ...out, verified, failures };
}
