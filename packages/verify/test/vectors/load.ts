// Loads the shared Sigstore verification vectors (../shared/vectors beside the repository, see its README.md) and
// turns each case.json into Waxseal verifier inputs. Used by the vector, tamper, property and
// cross-check tests and by bench/verify.bench.ts. The vectors are never copied into the repo.
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseBundleJson, parseTrustedRootJson, type Bundle, type TrustedRoot } from '../../../bundle/src/index.ts';
import { Verifier, type Artifact, type VerificationPolicy, type VerifierOptions, type VerificationResult } from '../../src/index.ts';
import type { HashName } from '../../../core/src/crypto.ts';

// The repository root is three folders above this one (packages/verify/test/vectors).
const REPO_ROOT = resolve(new URL('.', import.meta.url).pathname, '../../../..');
/** WAXSEAL_VECTORS, else `../shared/vectors` beside the repository root. */
export const VECTORS_DIR = process.env.WAXSEAL_VECTORS ?? join(REPO_ROOT, '..', 'shared', 'vectors');

export function vectorsPresent(): boolean {
  return existsSync(join(VECTORS_DIR, 'index.json'));
}

export const SKIP_MESSAGE = `Sigstore vectors not found at ${VECTORS_DIR} (set WAXSEAL_VECTORS): skipping`;

export interface CaseJson {
  id: string;
  bundle: string;
  trustedRoot: string;
  artifact: { file: string | null; digest?: { algorithm: string; hex: string } };
  publicKey: { file: string; validFor: { start: string; end: string } | null } | null;
  policy: { certificateIdentity?: string; certificateOidcIssuer?: string; publicKey?: string } | null;
  verifierOptions: { tlogThreshold: number; ctlogThreshold: number; timestampThreshold: number };
  expected: { result: 'ok' | 'fail'; reason?: string; acceptableAlternative?: string };
  expectedCertificateExtensions?: Record<string, string>;
  reference?: string;
  [k: string]: unknown;
}

export interface VectorCase {
  id: string;
  dir: string;
  json: CaseJson;
  bundleText: string;
  trustedRootText: string;
  artifactBytes?: Uint8Array;
  artifact: Artifact | undefined;
  policy: VerificationPolicy;
  options: VerifierOptions;
  expected: 'ok' | 'fail';
}

export function loadCase(id: string): VectorCase {
  const dir = join(VECTORS_DIR, id);
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as CaseJson;
  const bundleText = readFileSync(join(dir, json.bundle), 'utf8');
  const trustedRootText = readFileSync(join(dir, json.trustedRoot), 'utf8');
  let artifact: Artifact | undefined;
  let artifactBytes: Uint8Array | undefined;
  if (json.artifact.file) {
    artifactBytes = new Uint8Array(readFileSync(join(dir, json.artifact.file)));
    artifact = { bytes: artifactBytes };
  } else if (json.artifact.digest) {
    artifact = { digest: { algorithm: json.artifact.digest.algorithm as HashName, value: json.artifact.digest.hex } };
  }
  let policy: VerificationPolicy;
  if (json.publicKey) {
    const pem = readFileSync(join(dir, json.publicKey.file), 'utf8');
    const vf = json.publicKey.validFor;
    policy = { publicKey: vf ? { publicKey: pem, validFor: { start: new Date(vf.start), end: new Date(vf.end) } } : { publicKey: pem } };
  } else if (json.policy) {
    const extensions: Record<string, string> = {};
    for (const [k, v] of Object.entries(json.expectedCertificateExtensions ?? {})) extensions[k.split(' ')[0]!] = v;
    policy = {
      identities: [{ subjectAlternativeName: json.policy.certificateIdentity!, issuer: json.policy.certificateOidcIssuer!, extensions }],
    };
  } else {
    // "policy: null": no identity policy; the bundle must fail for another reason.
    policy = { withoutIdentityUnsafe: true };
  }
  const o = json.verifierOptions;
  const options: VerifierOptions = {
    tlogThreshold: o.tlogThreshold,
    ctlogThreshold: o.ctlogThreshold,
    skipSctUnsafe: o.ctlogThreshold === 0,
    // The vectors' timestampThreshold counts RFC 3161 times plus SET-backed integrated times:
    // our observer threshold.
    observerTimestampThreshold: o.timestampThreshold,
  };
  return {
    id,
    dir,
    json,
    bundleText,
    trustedRootText,
    artifact,
    ...(artifactBytes ? { artifactBytes } : {}),
    policy,
    options,
    expected: json.expected.result,
  };
}

export function loadCases(): VectorCase[] {
  const index = JSON.parse(readFileSync(join(VECTORS_DIR, 'index.json'), 'utf8')) as { id: string }[];
  return index.map((c) => loadCase(c.id));
}

const rootCache = new Map<string, TrustedRoot>();

export function trustedRootOf(c: VectorCase): TrustedRoot {
  let r = rootCache.get(c.trustedRootText);
  if (!r) {
    r = parseTrustedRootJson(c.trustedRootText);
    rootCache.set(c.trustedRootText, r);
  }
  return r;
}

export function verifierOf(c: VectorCase, options: VerifierOptions = c.options): Verifier {
  return new Verifier(trustedRootOf(c), options);
}

export type Outcome = { ok: true; result: VerificationResult } | { ok: false; error: unknown };

/** Parses and verifies a case (optionally with a modified bundle / verifier / policy). */
export function runCase(
  c: VectorCase,
  over: { bundle?: Bundle; verifier?: Verifier; policy?: VerificationPolicy; artifact?: Artifact | undefined } = {},
): Outcome {
  try {
    const bundle = over.bundle ?? parseBundleJson(c.bundleText);
    const verifier = over.verifier ?? verifierOf(c);
    const artifact = 'artifact' in over ? over.artifact : c.artifact;
    return { ok: true, result: verifier.verify(bundle, artifact, over.policy ?? c.policy) };
  } catch (error) {
    return { ok: false, error };
  }
}
