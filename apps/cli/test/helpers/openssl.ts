// openssl as an independent checker of what an instance issued.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem } from '../../../../packages/core/src/pem.ts';
import { fromBase64 } from '../../../../packages/core/src/bytes.ts';

/** Splits a PEM chain into its certificates, each with its END line. */
export const splitPemChain = (pem: string): string[] => pem.split(/(?<=-----END CERTIFICATE-----\n)/);

/**
 * `openssl verify` of a leaf certificate (DER, written to `dir`/leaf.pem) through an intermediate
 * to a root (PEM files); returns the output.
 */
export function opensslVerifyLeaf(dir: string, leafDer: Uint8Array, rootPemFile: string, intermediatePemFile: string): string {
  writeFileSync(join(dir, 'leaf.pem'), encodePem('CERTIFICATE', leafDer));
  return execFileSync(
    'openssl',
    ['verify', '-CAfile', rootPemFile, '-untrusted', intermediatePemFile, '-purpose', 'any', join(dir, 'leaf.pem')],
    { encoding: 'utf8' },
  );
}

/**
 * `openssl ts -verify` of a message-signature bundle's first RFC 3161 timestamp over its
 * signature bytes, with the TSA chain `tsaChainPem` (leaf, then root); returns the output.
 */
export function opensslVerifyTimestamp(dir: string, bundleJson: any, tsaChainPem: string): string {
  writeFileSync(join(dir, 'sig.bin'), fromBase64(bundleJson.messageSignature.signature));
  writeFileSync(
    join(dir, 'ts.tsr'),
    fromBase64(bundleJson.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp),
  );
  const [leaf, root] = splitPemChain(tsaChainPem);
  writeFileSync(join(dir, 'tsa-leaf.pem'), leaf!);
  writeFileSync(join(dir, 'tsa-root.pem'), root!);
  return execFileSync(
    'openssl',
    [
      'ts',
      '-verify',
      '-in',
      join(dir, 'ts.tsr'),
      '-data',
      join(dir, 'sig.bin'),
      '-CAfile',
      join(dir, 'tsa-root.pem'),
      '-untrusted',
      join(dir, 'tsa-leaf.pem'),
    ],
    { encoding: 'utf8' },
  );
}
