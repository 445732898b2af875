// TrustRoot sigstoreKeys <-> trusted root, with certificates made by openssl: chains survive the
// round trip as base64 PEM, the TSA's own certificate leads its chain, and logs are keyed by the
// SHA-256 of their public key, as policy-controller converts them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decodePem, sha256 } from '@waxseal/core';
import { buildCertificateAuthority, buildTransparencyLog, TRUSTED_ROOT_MEDIA_TYPE_V01, type TrustedRoot } from '@waxseal/bundle';
import { throwsWithCode } from '@waxseal/testkit';
import { parseTrustRoot } from './resources.ts';
import { keylessClusterImagePolicy, sigstoreKeysToTrustedRoot, trustRootFromTrustedRoot } from './trustroot.ts';
import { parseClusterImagePolicy } from './resources.ts';

const dir = mkdtempSync(join(tmpdir(), 'wx-trustroot-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

function cert(name: string, issuer?: string, ca = true): string {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  const ext = ca ? 'basicConstraints=critical,CA:true' : 'basicConstraints=critical,CA:false\nextendedKeyUsage=critical,timeStamping';
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  if (!issuer) {
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/O=Example/CN=${name}`,
      '-days',
      '2',
      '-out',
      `${name}.pem`,
      '-addext',
      'basicConstraints=critical,CA:true',
    );
  } else {
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/O=Example/CN=${name}`, '-out', `${name}.csr`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.pem`,
      '-CAkey',
      `${issuer}.key`,
      '-days',
      '1',
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
    );
  }
  return readFileSync(join(dir, `${name}.pem`), 'utf8');
}

const caRoot = cert('ca-root');
const caInter = cert('ca-inter', 'ca-root');
const tsaRoot = cert('tsa-root');
const tsaLeaf = cert('tsa-leaf', 'tsa-root', false);
const logKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

const root: TrustedRoot = {
  mediaType: TRUSTED_ROOT_MEDIA_TYPE_V01,
  certificateAuthorities: [buildCertificateAuthority({ uri: 'https://signing.example', chain: caInter + caRoot })],
  timestampAuthorities: [buildCertificateAuthority({ uri: 'https://signing.example/api/v1/timestamp', chain: tsaLeaf + tsaRoot })],
  tlogs: [buildTransparencyLog({ baseUrl: 'https://signing.example', publicKey: logKey, validFor: { start: new Date(0) } })],
  ctlogs: [],
};

test('trusted root -> TrustRoot -> trusted root keeps chains, subjects and URIs', () => {
  const tr = trustRootFromTrustedRoot(root, 'keys');
  const keys = (tr.spec as { sigstoreKeys: Record<string, { certChain: string }[]> }).sigstoreKeys;
  assert.deepEqual(Object.keys(keys), ['certificateAuthorities', 'timestampAuthorities']);
  assert.equal(Buffer.from(keys.certificateAuthorities![0]!.certChain, 'base64').toString(), caInter + caRoot);
  const back = sigstoreKeysToTrustedRoot(parseTrustRoot(tr).spec.sigstoreKeys!);
  assert.deepEqual(back.certificateAuthorities[0]!.certChain, root.certificateAuthorities[0]!.certChain);
  assert.deepEqual(back.certificateAuthorities[0]!.subject, { organization: 'Example', commonName: 'ca-inter' });
  assert.equal(back.timestampAuthorities[0]!.uri, 'https://signing.example/api/v1/timestamp');
  assert.deepEqual(back.timestampAuthorities[0]!.certChain, root.timestampAuthorities[0]!.certChain);
  assert.deepEqual(back.tlogs, []);
});

test('logs with `logs`; log IDs are SHA-256 of the key; the TSA leaf leads whatever the order', () => {
  const tr = trustRootFromTrustedRoot(root, 'keys', { logs: true });
  const parsed = parseTrustRoot(tr);
  const back = sigstoreKeysToTrustedRoot(parsed.spec.sigstoreKeys!);
  assert.deepEqual(back.tlogs[0]!.logId, sha256(decodePem(logKey, ['PUBLIC KEY']).der));
  const reordered = structuredClone(tr) as { spec: { sigstoreKeys: { timestampAuthorities: { certChain: string }[] } } };
  reordered.spec.sigstoreKeys.timestampAuthorities[0]!.certChain = Buffer.from(tsaRoot + tsaLeaf).toString('base64');
  const r2 = sigstoreKeysToTrustedRoot(parseTrustRoot(reordered).spec.sigstoreKeys!);
  assert.deepEqual(r2.timestampAuthorities[0]!.certChain, root.timestampAuthorities[0]!.certChain);
  // Two TSA leaves in one chain: policy-controller refuses it.
  const two = structuredClone(reordered);
  two.spec.sigstoreKeys.timestampAuthorities[0]!.certChain = Buffer.from(tsaLeaf + tsaLeaf + tsaRoot).toString('base64');
  throwsWithCode(() => parseTrustRoot(two), 'ERR_INVALID_INPUT', /at most one TSA certificate/);
});

test('the keyless ClusterImagePolicy it pairs with validates', () => {
  const cip = keylessClusterImagePolicy({
    name: 'p',
    trustRootName: 'keys',
    url: 'https://signing.example',
    glob: '**',
    identity: 'me@example.com',
    issuer: 'https://idp.example',
  });
  const p = parseClusterImagePolicy(cip);
  const a = p.spec.authorities[0]!;
  assert.equal(a.keyless?.insecureIgnoreSCT, true);
  assert.equal(a.keyless?.trustRootRef, 'keys');
  assert.deepEqual(a.rfc3161timestamp, { trustRootRef: 'keys' });
});
