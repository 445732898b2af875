import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTemplate, claimToString, formatFloatF, goFormatValue, TemplateExecError } from './gotemplate.ts';
import { throwsWithCode } from '@waxseal/testkit';

const run = (src: string, data: Record<string, string>) => compileTemplate(src).execute(data);

test('field access, text and index with keys holding / and .', () => {
  assert.equal(
    run('{{ .url }}/{{ .job_workflow_ref }}', {
      url: 'https://github.com',
      job_workflow_ref: 'o/r/.github/workflows/x.yml@refs/heads/main',
    }),
    'https://github.com/o/r/.github/workflows/x.yml@refs/heads/main',
  );
  assert.equal(run('{{index . "oidc.circleci.com/vcs-ref"}}', { 'oidc.circleci.com/vcs-ref': 'refs/heads/main' }), 'refs/heads/main');
  assert.equal(run('{{(index . "a/b")}}-x', { 'a/b': 'v' }), 'v-x');
  assert.equal(run('plain text', {}), 'plain text');
});

test('missing key is an error for .field (missingkey=error) but index yields "" as in Go', () => {
  // An internal error type: the issuer turns it into ERR_IDENTITY_CLAIMS (issuers.test.ts).
  assert.throws(
    () => run('{{ .nope }}', {}),
    (e) => e instanceof TemplateExecError && /nope/.test(e.message),
  );
  assert.equal(run('[{{ index . "nope" }}]', {}), '[]');
});

test('if / else if / else / eq / ne / not / and / or', () => {
  const t = compileTemplate('refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}');
  assert.equal(t.execute({ ref_type: 'branch', ref: 'main' }), 'refs/heads/main');
  assert.equal(t.execute({ ref_type: 'tag', ref: 'v1' }), 'refs/tags/v1');
  const chain = compileTemplate('{{if eq .x "a"}}A{{else if eq .x "b"}}B{{else}}C{{end}}');
  assert.deepEqual(
    ['a', 'b', 'c'].map((x) => chain.execute({ x })),
    ['A', 'B', 'C'],
  );
  assert.equal(run('{{if not .e}}empty{{end}}', { e: '' }), 'empty');
  assert.equal(run('{{if and .a .b}}both{{else}}no{{end}}', { a: 'x', b: '' }), 'no');
  assert.equal(run('{{ or .a .b }}', { a: '', b: 'second' }), 'second');
  assert.equal(run('{{if ne .a "x"}}ne{{end}}', { a: 'y' }), 'ne');
  assert.equal(run('{{ .a | print }}', { a: 'piped' }), 'piped');
  assert.equal(run('{{ eq .a "1" "2" }}', { a: '2' }), 'true');
});

test('trim markers, comments and raw strings', () => {
  assert.equal(run('a  {{- .x -}}  b', { x: 'X' }), 'aXb');
  assert.equal(run('a{{/* note */}}b', {}), 'ab');
  assert.equal(run('{{ `raw}}` }}', {}), 'raw}}');
});

test('syntax errors are configuration errors at compile time', () => {
  for (const bad of [
    '{{ .x ',
    '{{if .x}}no end',
    '{{end}}',
    '{{ nosuchfunc .x }}',
    '{{ $x := 1 }}',
    '{{range .x}}{{end}}',
    '{{ eq (.x }}',
  ]) {
    throwsWithCode(() => compileTemplate(bad), 'ERR_CONFIG', undefined, bad);
  }
});

test('claims become strings as Fulcio flattens them', () => {
  assert.equal(claimToString(42), '42');
  assert.equal(claimToString(1e21), '1000000000000000000000');
  assert.equal(claimToString(1.5), '1.5');
  assert.equal(claimToString(1e-7), '0.0000001');
  assert.equal(claimToString(true), 'true');
  assert.equal(claimToString(null), '<nil>');
  assert.equal(claimToString(['a', 'b']), '[a b]');
  assert.equal(claimToString({ b: 1, a: 'x' }), 'map[a:x b:1]');
  assert.equal(goFormatValue(1000000), '1e+06');
  assert.equal(formatFloatF(-2.25), '-2.25');
});
