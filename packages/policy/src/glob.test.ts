import assert from 'node:assert/strict';
import { test } from 'node:test';
import { throwsWithCode } from '@waxseal/testkit';
import { compileGlob, globError, globMatches, qualifiedImageName } from './glob.ts';

const DIGEST = 'sha256:5504f2a95018e3d8a52d80d9e1a128c6ea337581808ff9fe96f5628ce2336350';

// policy-controller's pkg/apis/glob test table, case for case.
const CASES: [image: string, glob: string, match: boolean][] = [
  ['foo', 'index.docker.io/library/foo:latest', true],
  ['foo', 'index.docker.io/library/foo:*', true],
  ['foo', 'index.docker.io/library/*', true],
  ['foo', 'index.docker.io/library/*:latest', true],
  ['foo', 'index.docker.io/*/*', true],
  ['foo', 'index.docker.io/**', true],
  ['foo', 'index.docker.**', true],
  ['foo', 'inde**', true],
  ['foo', '**', true],
  ['foo', 'foo', true],
  ['foo', 'foo*', true],
  ['foo', 'foo**', true],
  ['myuser/myapp', 'index.docker.io/myuser/myapp:latest', true],
  ['myuser/myapp', 'index.docker.io/myuser/myapp:*', true],
  ['myuser/myapp', 'index.docker.io/myuser/*', true],
  ['myuser/myapp', 'index.docker.io/myuser/*:latest', true],
  ['myuser/myapp', 'index.docker.io/*/*', true],
  ['myuser/myapp', 'index.docker.io/**', true],
  ['myuser/myapp', 'index.docker.**', true],
  ['myuser/myapp', 'inde**', true],
  ['myuser/myapp', '**', true],
  ['myuser/myapp', 'myuser/myapp', true],
  ['myuser/myapp', 'myuser/myapp*', true],
  ['myuser/myapp', 'myuser/myapp**', true],
  ['ghcr.io/foo/bar', 'ghcr.io/*/*', true],
  ['ghcr.io/foo/bar', 'ghcr.io/**', true],
  ['ghcr.io/foo', 'ghcr.io/*/*', false],
  ['ghcr.io/foo', 'ghcr.io/**', true],
  ['ghcr.io/foo', 'ghc**', true],
  ['ghcr.io/foo', '**', true],
  ['ghcr.io/foo', '*/**', true],
  ['ghcr.io/foo', 'ghcr.io/foo*', true],
  ['ghcr.io/foo', 'ghcr.io/foo**', true],
  ['prefix-ghcr.io/foo', 'ghcr.io/foo', false],
  ['ghcr.io/foo-suffix', 'ghcr.io/foo', false],
  ['ghcrxio/foo', 'ghcr.io/**', false],
  ['foo', '*', true],
  ['myuser/myapp', '*/*', true],
  [`ghcr.io/foo@${DIGEST}`, `ghcr.io/foo@${DIGEST}`, true],
  // The tag is part of the name: `*` crosses `:` but not `/`.
  ['registry.local:5000/team/app:v1', 'registry.local:5000/team/*', true],
  ['registry.local:5000/team/app:v1', 'registry.local:5000/*', false],
  ['registry.local:5000/team/app:v1', 'registry.local:5000/**', true],
  [`registry.local:5000/team/app:v1@${DIGEST}`, 'registry.local:5000/team/app@*', true],
];

test("globMatches reproduces policy-controller's glob table", () => {
  for (const [image, glob, want] of CASES) assert.equal(globMatches(glob, image), want, `${image} | ${glob}`);
});

test('invalid globs and invalid references are refused', () => {
  for (const g of ['.+', '[a-z]*', 'ghcr.io/foo?', 'a b', '', 'x'.repeat(2000)]) {
    assert.ok(globError(g), g);
    throwsWithCode(() => compileGlob(g), 'ERR_INVALID_INPUT', { check: 'policy.glob' });
  }
  throwsWithCode(() => globMatches('**', 'invalid&name'), 'ERR_INVALID_INPUT');
});

test('qualifiedImageName is go-containerregistry Name()', () => {
  assert.equal(qualifiedImageName('busybox'), 'index.docker.io/library/busybox:latest');
  assert.equal(qualifiedImageName('docker.io/a/b:1'), 'index.docker.io/a/b:1');
  assert.equal(qualifiedImageName(`ghcr.io/a/b:1@${DIGEST}`), `ghcr.io/a/b@${DIGEST}`);
  assert.equal(qualifiedImageName('localhost:5000/x'), 'localhost:5000/x:latest');
});
