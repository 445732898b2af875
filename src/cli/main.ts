// waxseal command-line entry point (placeholder until the CLI lands).
const args = process.argv.slice(2);
if (args[0] === '--version') {
  process.stdout.write('waxseal 0.1.0\n');
} else {
  process.stderr.write('waxseal: the CLI is being built\n');
  process.exitCode = 2;
}
