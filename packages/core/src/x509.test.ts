import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseCertificatesPem,
  basicConstraints,
  keyUsage,
  extendedKeyUsage,
  subjectAltNames,
  isSignedBy,
  certPublicKey,
  subjectKeyId,
} from './x509.ts';

test('parses an openssl-made CA and leaf certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-x509-'));
  try {
    const run = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
    // openssl req arguments for a new unencrypted P-256 key written to `file`.
    const newKey = (file: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file];
    run(
      'req',
      '-x509',
      ...newKey('ca.key'),
      '-out',
      'ca.pem',
      '-subj',
      '/O=Test/CN=Root',
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:1',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    run('req', ...newKey('leaf.key'), '-out', 'leaf.csr', '-subj', '/CN=leaf');
    execFileSync(
      'sh',
      [
        '-c',
        `printf 'keyUsage=critical,digitalSignature\\nextendedKeyUsage=codeSigning\\nsubjectAltName=critical,email:a@example.com,URI:https://example.com/x\\n' > ext.cnf && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -out leaf.pem -days 1 -extfile ext.cnf`,
      ],
      { cwd: dir, stdio: 'pipe' },
    );
    const [ca] = parseCertificatesPem(readFileSync(join(dir, 'ca.pem'), 'utf8'));
    const [leaf] = parseCertificatesPem(readFileSync(join(dir, 'leaf.pem'), 'utf8'));
    assert.ok(ca && leaf);
    assert.deepEqual(basicConstraints(ca), { ca: true, pathLen: 1 });
    assert.deepEqual([...keyUsage(ca)!].sort(), ['cRLSign', 'keyCertSign']);
    assert.equal(ca.subject['2.5.4.3'], 'Root');
    assert.ok(subjectKeyId(ca));
    assert.deepEqual([...keyUsage(leaf)!], ['digitalSignature']);
    assert.deepEqual(extendedKeyUsage(leaf), ['1.3.6.1.5.5.7.3.3']);
    assert.deepEqual(subjectAltNames(leaf), [
      { type: 'email', value: 'a@example.com' },
      { type: 'uri', value: 'https://example.com/x' },
    ]);
    assert.equal(isSignedBy(leaf, certPublicKey(ca)), true);
    assert.equal(isSignedBy(ca, certPublicKey(leaf)), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
