// The CA alone in its own process, for bench/ca.bench.ts:
//   node bench/servers/ca.ts <issuer-url> <ca-key-uri> <chain-pem-path>
// The issuer is configured as GitHub Actions (ci-provider github-workflow templates), so every
// certificate carries the full set of CI extensions. Prints "LISTENING <url>" when ready.
//
//   node bench/servers/ca.ts --floor
// The crypto floor instead: a bare node:http JSON server that also does what no CA can skip, one
// P-256 signature verification (the proof of possession) and one P-256 signature (the
// certificate) per request, with node:crypto at its fastest (KeyObject arguments, no key import)
// and, like the CA, on libuv's threadpool.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, sign, verify, randomBytes } from 'node:crypto';
import { openSigner } from '../../packages/keys/src/open.ts';
import { loadCaChain } from '../../packages/ca/src/chain.ts';
import { githubActionsIssuerConfig, parseIssuerConfig } from '../../packages/ca/src/issuers.ts';
import { startCaServer } from '../../packages/ca/src/service.ts';
import { serveJsonBaseline } from '../lib.ts';

if (process.argv[2] === '--floor') {
  const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const challenge = Buffer.from('repo:octo-org/octo-repo:ref:refs/heads/main');
  const proof = sign('sha256', challenge, client.privateKey);
  const tbs = randomBytes(700);
  serveJsonBaseline((parsed, res) => {
    // Both on libuv's threadpool (node:crypto's callback form), as the CA does them.
    verify('sha256', challenge, client.publicKey, proof, (_e, ok) => {
      sign('sha256', tbs, ca.privateKey, (_e2, signature) => {
        const body = JSON.stringify({ ok: ok && parsed !== undefined, signature: signature.toString('base64') });
        res.writeHead(ok ? 200 : 500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
  });
} else {
  const [issuerUrl, keyUri, chainPath] = process.argv.slice(2);
  if (!issuerUrl || !keyUri || !chainPath) {
    process.stderr.write('usage: ca.ts <issuer-url> <ca-key-uri> <chain-pem-path> | ca.ts --floor\n');
    process.exit(2);
  }
  const signer = await openSigner(keyUri);
  const chain = loadCaChain(signer, readFileSync(chainPath, 'utf8'));
  const issuers = parseIssuerConfig(
    JSON.stringify({ OIDCIssuers: { [issuerUrl]: { IssuerURL: issuerUrl, Type: 'ci-provider', CIProvider: 'github-workflow' } } }),
    {
      include: [githubActionsIssuerConfig()],
    },
  );
  const server = await startCaServer({ signer, chain: chain.certificates, issuers });
  process.stdout.write(`LISTENING ${server.url}\n`);
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}
