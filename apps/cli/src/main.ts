// waxseal: the command-line client and operator tool. Commands load lazily so that
// `waxseal --version` and `--help` start fast.
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { makeUi, reportError, closestFlag, EXIT, UsageError, type Ui } from './ui.ts';

/**
 * For commands that run the same checks over many objects in one short process: V8 then gives
 * each function its feedback vector on the first call instead of the ninth, so the checks reach
 * optimised code within the run (1,000 commits verified 20% faster; docs/performance.md). Set
 * before the command's modules load; worker threads share the flag.
 */
function batchTuning(): void {
  setFlagsFromString('--no-lazy-feedback-allocation');
}

type Command = { summary: string; run: (argv: string[], ui: Ui) => Promise<number> };

const commands: Record<string, Command> = {
  'sign-blob': {
    summary: 'sign a file into a Sigstore bundle (keyless)',
    run: async (a, ui) => (await import('./commands/sign.ts')).signBlob(a, ui),
  },
  'attest-blob': {
    summary: 'sign an in-toto attestation about a file',
    run: async (a, ui) => (await import('./commands/sign.ts')).attestBlob(a, ui),
  },
  'verify-blob': {
    summary: 'verify a file against a bundle and an identity policy',
    run: async (a, ui) => (await import('./commands/verify.ts')).verifyBlob(a, ui),
  },
  'verify-blob-attestation': {
    summary: 'verify an attestation bundle about a file',
    run: async (a, ui) => (await import('./commands/verify.ts')).verifyBlobAttestation(a, ui),
  },
  'verify-commit': {
    summary: "verify a commit's gitsign-format signature and signer",
    run: async (a, ui) => (await import('./commands/git.ts')).verifyCommit(a, ui),
  },
  'verify-tag': {
    summary: "verify a tag's gitsign-format signature and signer",
    run: async (a, ui) => (await import('./commands/git.ts')).verifyTag(a, ui),
  },
  'verify-commits': {
    summary: 'presubmit: every commit in a range signed as the source policy allows',
    run: async (a, ui) => {
      batchTuning();
      return (await import('./commands/git.ts')).verifyCommits(a, ui);
    },
  },
  sign: {
    summary: 'sign a container image in its registry (keyless, or with --key)',
    run: async (a, ui) => (await import('./commands/image.ts')).sign(a, ui),
  },
  attest: {
    summary: 'attest a container image (in-toto, DSSE) in its registry',
    run: async (a, ui) => (await import('./commands/image.ts')).attest(a, ui),
  },
  verify: {
    summary: "verify a container image's signatures from its registry",
    run: async (a, ui) => (await import('./commands/image.ts')).verify(a, ui),
  },
  'verify-attestation': {
    summary: "verify a container image's attestations",
    run: async (a, ui) => (await import('./commands/image.ts')).verifyAttestation(a, ui),
  },
  tree: {
    summary: 'list what is attached to a container image (signatures, attestations, SBOMs)',
    run: async (a, ui) => (await import('./commands/image-inspect.ts')).tree(a, ui),
  },
  download: {
    summary: "print a container image's signatures or attestations (`download signature|attestation`)",
    run: async (a, ui) => (await import('./commands/image-inspect.ts')).download(a, ui),
  },
  'generate-key-pair': {
    summary: "generate a key pair in cosign's encrypted format (cosign.key, cosign.pub)",
    run: async (a, ui) => (await import('./commands/keypair.ts')).generateKeyPair(a, ui),
  },
  'import-key-pair': {
    summary: "convert a PEM private key into cosign's encrypted format",
    run: async (a, ui) => (await import('./commands/keypair.ts')).importKeyPair(a, ui),
  },
  policy: {
    summary: 'admission policies: `policy test` an image against a ClusterImagePolicy, `policy trustroot`',
    run: async (a, ui) => (await import('./commands/policy.ts')).policy(a, ui),
  },
  admission: {
    summary: 'admission webhook: `admission serve` enforces image policies at Kubernetes admission',
    run: async (a, ui) => (await import('./commands/admission.ts')).admission(a, ui),
  },
  login: {
    summary: 'log in with your OIDC provider and cache the ID token',
    run: async (a, ui) => (await import('./commands/login.ts')).login(a, ui),
  },
  dev: {
    summary: 'run the all-in-one dev instance (IdP, CA, TSA, log); `dev token` mints a dev token',
    run: async (a, ui) => (await import('./commands/dev.ts')).dev(a, ui),
  },
  serve: {
    summary: 'run an instance from a configuration file (HSM/KMS keys, rules, audit, TUF)',
    run: async (a, ui) => (await import('./commands/serve.ts')).serve(a, ui),
  },
  ca: {
    summary: 'CA set-up and rotation: `ca init`, `ca csr`, `ca import-chain`, `ca rotate`',
    run: async (a, ui) => (await import('./commands/ca.ts')).ca(a, ui),
  },
  log: { summary: 'transparency log: `log fsck`, `log monitor`', run: async (a, ui) => (await import('./commands/log.ts')).log(a, ui) },
  audit: {
    summary: 'list, verify or export the audit log of key uses',
    run: async (a, ui) => (await import('./commands/audit.ts')).audit(a, ui),
  },
  trust: {
    summary: "trust init: install an instance's trust documents through TUF",
    run: async (a, ui) => (await import('./commands/trust.ts')).trust(a, ui),
  },
  tsa: { summary: 'TSA set-up: `tsa init`, `tsa rotate`', run: async (a, ui) => (await import('./commands/tsa.ts')).tsa(a, ui) },
  env: {
    summary: 'print environment variables that point cosign, gitsign, sigstore-js and waxseal at an instance',
    run: async (a, ui) => (await import('./commands/env.ts')).env(a, ui),
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return `waxseal: private keyless software signing (a self-hosted Sigstore)

Usage: waxseal <command> [options]    (waxseal <command> --help for details)

Commands:
${Object.entries(commands)
  .map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Output: results on stdout (--json for machine use), messages on stderr; NO_COLOR is honoured.
Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 bad input or configuration,
            4 identity refused or missing, 5 service unavailable, 70 internal error.
`;
}

export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const ui = makeUi({ json });
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || (name === 'help' && !rest[0])) {
      process.stdout.write(mainHelp());
      return name ? EXIT.ok : EXIT.usage;
    }
    if (name === '--version' || name === 'version') {
      ui.result({ version: '0.1.0' }, 'waxseal 0.1.0');
      return EXIT.ok;
    }
    // `waxseal help <command>` is `waxseal <command> --help`.
    if (name === 'help' && rest[0] && Object.hasOwn(commands, rest[0]))
      return await commands[rest[0]]!.run([...rest.slice(1), '--help'], ui);
    const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!cmd) {
      const asked = name === 'help' ? rest[0]! : name;
      const hint = closestFlag(asked, Object.keys(commands));
      throw new UsageError(`unknown command ${JSON.stringify(asked)}${hint ? `; did you mean ${hint}?` : ''}`);
    }
    return await cmd.run(rest, ui);
  } catch (e) {
    return reportError(e, ui);
  }
}

/** Runs the CLI as a process: sets the exit code, never throws. */
export function run(argv: string[]): void {
  // A reader that goes away (`waxseal verify-commits ... | head`) is not an error of ours: the rest
  // of the output is dropped and the exit code still says what the command found.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.exitCode = reportError(e, { json: false });
    },
  );
}

// Run directly (`node apps/cli/src/main.ts`, as the tests and `npm start` do).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) run(process.argv.slice(2));
