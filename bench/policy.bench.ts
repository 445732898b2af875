// Admission decisions over already-fetched evidence (what a warm PolicyEngine does per image once
// the registry answered): decideImage with a ClusterImagePolicy whose key authority must verify the
// image's signature bundle, next to the bare Verifier call on the same bundle
// (verifyImageAttachments with the same key policy), in the same process. The difference is the
// policy layer's cost: matching authorities to evidence, building authorityMatches, the CIP-level
// CEL policy (second workload). Short blocks of each alternate (the machine is shared); per-round
// ratios give the median. A few seconds in all (BENCH_SECONDS, default 2 per side).
import { encodePem } from '../packages/core/src/index.ts';
import { generateSigner } from '../packages/keys/src/memory.ts';
import { signStatement, verifyImageAttachments, type Attachment } from '../packages/oci/src/index.ts';
import { decideImage, loadPolicyStore, type EvaluationInput } from '../packages/policy/src/index.ts';
import { signStatementWithKey } from '../packages/sign/src/sign-with-key.ts';
import { Verifier } from '../packages/verify/src/index.ts';
import { fmt, median, report } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = 10;

const signer = generateSigner('ecdsa-p256');
const pem = encodePem('PUBLIC KEY', signer.publicKeySpki);
const digest = `sha256:${'ab'.repeat(32)}`;
const image = `registry.example/acme/app@${digest}`;
const bundle = await signStatementWithKey(signStatement(digest), { signer });
const attachments: Attachment[] = [{ format: 'bundle', location: `sha256:${'cd'.repeat(32)}`, bundle }];

const policy = (withCel: boolean) => `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: bench}
spec:
  images: [{glob: "registry.example/**"}]
  authorities:
  - name: release-key
    key:
      data: |
${pem
  .trimEnd()
  .split('\n')
  .map((l) => `        ${l}`)
  .join('\n')}
${withCel ? '  policy:\n    type: cel\n    data: "size(authorityMatches[\'release-key\'].signatures) >= 1"\n' : ''}`;

function workload(withCel: boolean) {
  const store = loadPolicyStore([{ name: 'bench.yaml', text: policy(withCel) }]);
  const policies = store.clusterPolicies;
  // The evidence the engine fetched for the authority, under its request key.
  const key = JSON.stringify(['signature', '', '', ['bundle', 'legacy'], []]);
  const input: EvaluationInput = { image, digest, evidence: new Map([[key, { attachments }]]), trustRoots: store.trustRoots };
  const d = decideImage(policies, input);
  if (!d.allowed) throw new Error(`bench setup: the policy denies: ${d.errors.join('; ')}`);
  return () => {
    if (!decideImage(policies, input).allowed) throw new Error('denied');
  };
}

// The bare verifier, trust prepared once, same key policy and thresholds as the key authority.
const verifier = new Verifier(
  {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
  },
  { tlogThreshold: 0, timestampThreshold: 0, ctlogThreshold: 0, skipSctUnsafe: true, observerTimestampThreshold: 0 },
);
const bare = () => {
  const r = verifyImageAttachments(verifier, attachments, { digest, policy: { publicKey: { publicKey: pem } }, kind: 'signature', image });
  if (r.verified.length !== 1) throw new Error('not verified');
};

function block(fn: () => void, ms: number): number {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
  }
  return n;
}

function measure(name: string, fn: () => void): void {
  for (let i = 0; i < 200; i++) {
    fn();
    bare();
  }
  const blockMs = (SECONDS * 1000) / ROUNDS;
  let nf = 0;
  let nb = 0;
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = block(fn, blockMs);
    const b = block(bare, blockMs);
    nf += a;
    nb += b;
    ratios.push(a / b);
  }
  const secs = (ROUNDS * blockMs) / 1000;
  report(name, nf / secs, 'decisions/s', { name: 'bare verify', value: nb / secs });
  process.stdout.write(
    `${''.padEnd(34)} per image ${fmt((1e6 * secs) / nf, 1)} µs vs ${fmt((1e6 * secs) / nb, 1)} µs; median round ratio ${fmt(100 * median(ratios), 1)}%\n`,
  );
}

measure('decideImage (key authority)', workload(false));
measure('decideImage (key + CEL policy)', workload(true));
