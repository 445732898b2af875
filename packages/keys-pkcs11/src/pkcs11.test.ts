import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWaxsealError } from '../../core/src/errors.ts';
import { parsePkcs11Uri, readPin } from './pkcs11.ts';

const M = 'module-path=/opt/hsm/lib.so';

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isWaxsealError(e, 'ERR_CONFIG') && re.test(e.message));
}

test('parses RFC 7512 path and query attributes with percent-decoding', () => {
  const loc = parsePkcs11Uri(`pkcs11:token=My%20Token;serial=abc123;object=ca%3Bkey;id=%01%02%ff?${M}&pin-source=env:PIN`);
  assert.equal(loc.token, 'My Token');
  assert.equal(loc.serial, 'abc123');
  assert.equal(loc.object, 'ca;key');
  assert.deepEqual(loc.id, Uint8Array.of(1, 2, 255));
  assert.equal(loc.modulePath, '/opt/hsm/lib.so');
  assert.equal(loc.pinSource, 'env:PIN');
  assert.equal(loc.pinValue, undefined);
});

test('accepts attributes other tools print, slot-id, and vendor x- attributes', () => {
  const loc = parsePkcs11Uri(
    `pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;slot-id=7;library-description=x;object=k;type=private;x-vendor=1?${M}`,
  );
  assert.equal(loc.model, 'SoftHSM v2');
  assert.equal(loc.manufacturer, 'SoftHSM project');
  assert.equal(loc.slotId, 7);
});

test('keyRef drops pin-value but keeps everything else', () => {
  const loc = parsePkcs11Uri(`pkcs11:token=t;object=k?pin-value=secret&${M}`);
  assert.equal(loc.pinValue, 'secret');
  assert.equal(loc.keyRef, `pkcs11:token=t;object=k?${M}`);
  assert.ok(!loc.keyRef.includes('secret'));
  assert.equal(parsePkcs11Uri(`pkcs11:object=k?${M}&pin-value=x`).keyRef, `pkcs11:object=k?${M}`);
});

test('rejects malformed or ambiguous URIs with ERR_CONFIG', () => {
  configError(() => parsePkcs11Uri(`pkcs11:token=t?${M}`), /object=<label>/);
  configError(() => parsePkcs11Uri(`pkcs11:token=t;tokn=x;object=k?${M}`), /unknown path attribute tokn/);
  configError(() => parsePkcs11Uri(`pkcs11:object=k?${M}&pin=1`), /unknown query attribute pin/);
  configError(() => parsePkcs11Uri(`pkcs11:object=a;object=b?${M}`), /repeated/);
  configError(() => parsePkcs11Uri(`pkcs11:object=k;type=public?${M}`), /type=public cannot sign/);
  configError(() => parsePkcs11Uri(`pkcs11:object=k%zz?${M}`), /percent-encoding/);
  configError(() => parsePkcs11Uri(`pkcs11:object=%ff?${M}`), /UTF-8/);
  configError(() => parsePkcs11Uri(`pkcs11:object=k;slot-id=x?${M}`), /slot-id/);
  configError(() => parsePkcs11Uri(`pkcs11:object=k?${M}&pin-value=1&pin-source=env:X`), /not both/);
  configError(() => parsePkcs11Uri('pkcs11:object=k?module-path=relative.so'), /absolute/);
  configError(() => parsePkcs11Uri('pkcs11:object=k?module-name=no-such-module-anywhere'), /no PKCS#11 module named/);
  configError(() => parsePkcs11Uri('pkcs11:object=k;token'), /has no value/);
});

test('without module-path the module comes from WAXSEAL_PKCS11_MODULE, else a clear error', () => {
  const saved = process.env['WAXSEAL_PKCS11_MODULE'];
  try {
    delete process.env['WAXSEAL_PKCS11_MODULE'];
    configError(() => parsePkcs11Uri('pkcs11:object=k'), /no module/);
    process.env['WAXSEAL_PKCS11_MODULE'] = '/opt/from-env.so';
    assert.equal(parsePkcs11Uri('pkcs11:object=k').modulePath, '/opt/from-env.so');
  } finally {
    if (saved === undefined) delete process.env['WAXSEAL_PKCS11_MODULE'];
    else process.env['WAXSEAL_PKCS11_MODULE'] = saved;
  }
});

test('readPin: env, file (trailing newline stripped), inline, and clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'waxseal-pin-'));
  try {
    process.env['WAXSEAL_UNIT_PIN'] = '4321';
    assert.equal(readPin({ pinSource: 'env:WAXSEAL_UNIT_PIN' }), '4321');
    writeFileSync(join(dir, 'pin'), '9876\n');
    assert.equal(readPin({ pinSource: `file:${join(dir, 'pin')}` }), '9876');
    assert.equal(readPin({ pinSource: `file://${join(dir, 'pin')}` }), '9876');
    assert.equal(readPin({ pinSource: join(dir, 'pin') }), '9876');
    assert.equal(readPin({ pinValue: '1111' }), '1111');
    configError(() => readPin({}), /no PIN/);
    configError(() => readPin({ pinSource: 'env:WAXSEAL_UNIT_PIN_UNSET' }), /not set/);
    configError(() => readPin({ pinSource: '|/bin/get-pin' }), /not supported/);
    configError(() => readPin({ pinSource: 'https://x' }), /env:VARIABLE or file:/);
    configError(() => readPin({ pinSource: `file:${join(dir, 'none')}` }), /cannot read PIN file/);
  } finally {
    delete process.env['WAXSEAL_UNIT_PIN'];
    rmSync(dir, { recursive: true, force: true });
  }
});
