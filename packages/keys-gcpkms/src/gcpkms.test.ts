import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWaxsealError } from '../../core/src/errors.ts';
import { parseGcpKmsUri } from './gcpkms.ts';

const NAME = 'projects/my-proj/locations/us-east1/keyRings/ring_1/cryptoKeys/fulcio-ca/cryptoKeyVersions/3';
const configError = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => isWaxsealError(e, 'ERR_CONFIG') && re.test(e.message));

test('parses sigstore-style gcpkms URIs naming a key version', () => {
  assert.deepEqual(parseGcpKmsUri(`gcpkms://${NAME}`), { name: NAME, keyRef: `gcpkms://${NAME}` });
});

test('endpoint parameter: http for loopback, https otherwise, scheme override', () => {
  assert.deepEqual(parseGcpKmsUri(`gcpkms://${NAME}?endpoint=127.0.0.1:8080`).endpoint, {
    host: '127.0.0.1',
    port: 8080,
    protocol: 'http',
  });
  assert.deepEqual(parseGcpKmsUri(`gcpkms://${NAME}?endpoint=kms.private.example`).endpoint, {
    host: 'kms.private.example',
    protocol: 'https',
  });
  assert.deepEqual(parseGcpKmsUri(`gcpkms://${NAME}?endpoint=[::1]:9000`).endpoint, { host: '::1', port: 9000, protocol: 'http' });
  assert.deepEqual(parseGcpKmsUri(`gcpkms://${NAME}?endpoint=fake-kms:80&endpoint-scheme=http`).endpoint, {
    host: 'fake-kms',
    port: 80,
    protocol: 'http',
  });
});

test('rejects malformed URIs with ERR_CONFIG', () => {
  configError(() => parseGcpKmsUri('gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k'), /name the key version/);
  configError(
    () => parseGcpKmsUri('gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/x'),
    /not a key version name/,
  );
  configError(() => parseGcpKmsUri('gcpkms://projects/p/../keyRings/r/cryptoKeys/k/cryptoKeyVersions/1'), /not a key version name/);
  configError(() => parseGcpKmsUri('gcpkms:projects/p'), /expected gcpkms:\/\/projects/);
  configError(() => parseGcpKmsUri(`gcpkms://${NAME}?endpoint=http://x`), /host\[:port\]/);
  configError(() => parseGcpKmsUri(`gcpkms://${NAME}?retries=3`), /unknown parameter retries/);
  configError(() => parseGcpKmsUri(`gcpkms://${NAME}?endpoint=x&endpoint-scheme=ftp`), /http or https/);
});
