// Real certificate chains for the seed's TrustRoot, made with openssl: a CA, and a TSA leaf
// (timeStamping, critical) issued by it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEED_POLICY } from './examples.ts';
import { type Obj, yamlDocs } from './k8s.ts';

/** The CA chain and the TSA chain (leaf + CA), base64 PEM as a TrustRoot holds them. */
export function chains(): { ca: string; tsa: string } {
  const dir = mkdtempSync(join(tmpdir(), 'waxseal-pki-'));
  try {
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ossl(
      'req',
      '-x509',
      ...ec,
      '-days',
      '30',
      '-subj',
      '/O=Waxseal/CN=Waxseal dev CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    ossl('req', ...ec, '-subj', '/O=Waxseal/CN=Waxseal dev TSA', '-keyout', 'tsa.key', '-out', 'tsa.csr');
    writeFileSync(join(dir, 'ext.cnf'), 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n');
    ossl(
      'x509',
      '-req',
      '-in',
      'tsa.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'ext.cnf',
      '-out',
      'tsa.crt',
    );
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    return { ca: Buffer.from(ca).toString('base64'), tsa: Buffer.from(readFileSync(join(dir, 'tsa.crt'), 'utf8') + ca).toString('base64') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The seed's ClusterImagePolicy and TrustRoot, the TrustRoot holding real chains. */
export function seedWithRealChains(): [Obj, Obj] {
  const { ca, tsa } = chains();
  const [cip, tr] = yamlDocs(SEED_POLICY, 'seed') as [Obj, Record<string, any>];
  tr['spec'].sigstoreKeys.certificateAuthorities[0].certChain = ca;
  tr['spec'].sigstoreKeys.timestampAuthorities[0].certChain = tsa;
  return [cip, tr as Obj];
}
