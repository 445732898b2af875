import assert from 'node:assert/strict';
import { test } from 'node:test';
import { throwsWithCode } from '@waxseal/testkit';
import { apiHost, formatReference, isLoopbackRegistry, parseReference, parseRepository } from './reference.ts';

const D = `sha256:${'ab'.repeat(32)}`;

test('image references as docker reads them', () => {
  assert.deepEqual(parseReference('alpine'), { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
  assert.deepEqual(parseReference('acme/app:1.2'), { registry: 'docker.io', repository: 'acme/app', tag: '1.2' });
  assert.deepEqual(parseReference('ghcr.io/acme/app/sub:v1'), { registry: 'ghcr.io', repository: 'acme/app/sub', tag: 'v1' });
  assert.deepEqual(parseReference(`localhost:5000/app@${D}`), { registry: 'localhost:5000', repository: 'app', digest: D });
  assert.deepEqual(parseReference(`127.0.0.1:5000/a/b:t@${D}`), { registry: '127.0.0.1:5000', repository: 'a/b', tag: 't', digest: D });
  assert.deepEqual(parseReference('index.docker.io/library/x:1'), { registry: 'docker.io', repository: 'library/x', tag: '1' });
  assert.equal(formatReference(parseReference(`r.example/a:t@${D}`)), `r.example/a@${D}`);
  assert.equal(apiHost('docker.io'), 'index.docker.io');
  assert.deepEqual(parseRepository('registry.example:8443/sigs/store'), { registry: 'registry.example:8443', repository: 'sigs/store' });
});

test('bad references are refused with the reason', () => {
  throwsWithCode(() => parseReference('Acme/App'), 'ERR_INVALID_INPUT', /lowercase/);
  throwsWithCode(() => parseReference('app@sha256:abc'), 'ERR_INVALID_INPUT', /digest must be sha256/);
  throwsWithCode(() => parseReference(`app@sha512:${'a'.repeat(128)}`), 'ERR_INVALID_INPUT', /digest/);
  throwsWithCode(() => parseReference('app:bad tag'), 'ERR_INVALID_INPUT');
  throwsWithCode(() => parseReference(''), 'ERR_INVALID_INPUT');
  throwsWithCode(() => parseReference('a//b'), 'ERR_INVALID_INPUT');
  throwsWithCode(() => parseRepository('r.example/a:tag'), 'ERR_INVALID_INPUT', /no tag or digest/);
});

test('only loopback registries are plain HTTP by default', () => {
  assert.ok(isLoopbackRegistry('localhost:5000'));
  assert.ok(isLoopbackRegistry('127.0.0.1:41234'));
  assert.ok(!isLoopbackRegistry('registry.example'));
  assert.ok(!isLoopbackRegistry('127.0.0.1.nip.io'));
});
