import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWaxsealError } from '../../core/src/errors.ts';
import { parseAwsKmsUri } from './awskms.ts';

function withRegion<T>(region: string | undefined, fn: () => T): T {
  const saved = [process.env['AWS_REGION'], process.env['AWS_DEFAULT_REGION']] as const;
  if (region === undefined) delete process.env['AWS_REGION'];
  else process.env['AWS_REGION'] = region;
  delete process.env['AWS_DEFAULT_REGION'];
  try {
    return fn();
  } finally {
    if (saved[0] === undefined) delete process.env['AWS_REGION'];
    else process.env['AWS_REGION'] = saved[0];
    if (saved[1] !== undefined) process.env['AWS_DEFAULT_REGION'] = saved[1];
  }
}

const configError = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => isWaxsealError(e, 'ERR_CONFIG') && re.test(e.message));

test('sigstore-style URIs: default endpoint, alias, key id, multi-region key, ARN', () => {
  withRegion('eu-west-1', () => {
    const a = parseAwsKmsUri('awskms:///alias/fulcio');
    assert.deepEqual(a, { region: 'eu-west-1', keyId: 'alias/fulcio', messageType: 'DIGEST', keyRef: 'awskms:///alias/fulcio' });
    assert.equal(parseAwsKmsUri('awskms:///1234abcd-12ab-34cd-56ef-1234567890ab').keyId, '1234abcd-12ab-34cd-56ef-1234567890ab');
    assert.equal(parseAwsKmsUri('awskms:///mrk-1234abcd12ab34cd56ef1234567890ab').keyId, 'mrk-1234abcd12ab34cd56ef1234567890ab');
    const arn = 'arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const b = parseAwsKmsUri(`awskms:///${arn}`);
    assert.equal(b.keyId, arn);
    assert.equal(b.region, 'us-east-2', 'the ARN region wins over AWS_REGION');
    assert.equal(parseAwsKmsUri('awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/ca').region, 'us-gov-west-1');
  });
});

test('endpoint host: http for loopback, https otherwise, overridable; region and message-type parameters', () => {
  withRegion(undefined, () => {
    const l = parseAwsKmsUri('awskms://localhost:4566/alias/foo?region=us-east-1&message-type=raw');
    assert.equal(l.endpoint, 'http://localhost:4566');
    assert.equal(l.region, 'us-east-1');
    assert.equal(l.messageType, 'RAW');
    assert.equal(parseAwsKmsUri('awskms://127.0.0.1:5000/alias/foo?region=x').endpoint, 'http://127.0.0.1:5000');
    assert.equal(parseAwsKmsUri('awskms://kms.internal:443/alias/foo?region=x').endpoint, 'https://kms.internal:443');
    assert.equal(parseAwsKmsUri('awskms://localstack:4566/alias/foo?region=x&endpoint-scheme=http').endpoint, 'http://localstack:4566');
    configError(() => parseAwsKmsUri('awskms:///alias/foo'), /no region/);
  });
});

test('rejects malformed URIs with ERR_CONFIG', () => {
  withRegion('us-east-1', () => {
    configError(() => parseAwsKmsUri('awskms://alias/foo'), /three slashes: awskms:\/\/\/alias/);
    configError(() => parseAwsKmsUri('awskms:alias/foo'), /expected awskms:\/\/\[host:port\]\//);
    configError(() => parseAwsKmsUri('awskms:///'), /not a key id/);
    configError(() => parseAwsKmsUri('awskms:///foo'), /not a key id/);
    configError(() => parseAwsKmsUri('awskms:///alias/foo?message-type=hash'), /message-type must be digest or raw/);
    configError(() => parseAwsKmsUri('awskms:///alias/foo?regoin=x'), /unknown parameter regoin/);
    configError(
      () => parseAwsKmsUri('awskms:///arn:aws:kms:us-east-2:111122223333:alias/a?region=eu-west-1'),
      /differs from the ARN's region/,
    );
    configError(() => parseAwsKmsUri('awskms://bad host/alias/foo'), /bad endpoint/);
    assert.equal(parseAwsKmsUri('awskms:///', true).keyId, '', 'key creation may leave the key part empty');
  });
});
