import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWaxsealError } from '@waxseal/core';
import { throwsWithCode } from '@waxseal/testkit';
import { checkIdentityPolicy, matchIdentities, type CertificateIdentity, type SignerIdentity } from './identity.ts';

const GH = 'https://token.actions.githubusercontent.com';
const SAN = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3';

function signer(san: string, issuer = GH): SignerIdentity {
  return { san, sanType: 'uri', issuer, extensions: {}, subjectAlternativeNames: [{ type: 'uri', value: san }] };
}

function matches(id: CertificateIdentity, s: SignerIdentity): boolean {
  checkIdentityPolicy(id, 0);
  try {
    matchIdentities([id], s);
    return true;
  } catch (e) {
    assert.ok(isWaxsealError(e, 'ERR_VERIFY_IDENTITY'), String(e));
    return false;
  }
}

test('identity regexps are Go RE2 patterns matched unanchored, as cosign --certificate-identity-regexp', () => {
  const san = (subjectAlternativeNameRegExp: string | RegExp, value = SAN) =>
    matches({ subjectAlternativeNameRegExp, issuer: GH }, signer(value));
  assert.equal(san('acme/app'), true); // unanchored, like regexp.MatchString
  assert.equal(san('^https://github\\.com/acme/app/'), true);
  assert.equal(san('^acme/app'), false);
  assert.equal(san('example\\.com', 'https://evil-example.com.attacker'), true);
  // RE2 syntax that JavaScript's RegExp lacks or reads differently.
  assert.equal(san('(?i)^HTTPS://GITHUB\\.COM/ACME/'), true);
  assert.equal(san('\\Ahttps://github\\.com/[[:alpha:]]+/app/.*@refs/tags/v\\d+\\.\\d+\\.\\d+\\z'), true);
  assert.equal(san('^\\pL+$', 'Zoë'), true);
  assert.equal(san('v1\\.2\\.3$', `${SAN}\n`), false); // $ is the end of the text without (?m)
  assert.equal(san('(?m)v1\\.2\\.3$', `${SAN}\nx`), true);
  // A RegExp object is read as RE2 with its flags; a g flag does not make answers stateful.
  const g = /ACME/gi;
  assert.equal(san(g), true);
  assert.equal(san(g), true);
  assert.equal(matches({ subjectAlternativeNameRegExp: '.', issuerRegExp: /^https:\/\/token\.actions\./ }, signer(SAN)), true);
  assert.equal(matches({ subjectAlternativeNameRegExp: '.', issuerRegExp: 'gitlab' }, signer(SAN)), false);
});

test('patterns RE2 refuses are policy errors naming the problem', () => {
  for (const [pattern, why] of [
    ['(?=acme)', /lookaround/],
    ['(?<!x)acme', /lookaround/],
    ['(a)\\1', /backreferences/],
    ['a++', /possessive/],
    ['\\Z', /invalid escape/],
    ['x{1001}', /invalid repeat count/],
    ['(', /missing closing \)/],
  ] as const) {
    const e = throwsWithCode(
      () => checkIdentityPolicy({ subjectAlternativeNameRegExp: pattern, issuer: GH }, 3),
      'ERR_INVALID_INPUT',
      why,
      pattern,
    );
    assert.equal(e.check, 'policy');
    assert.match(e.message, /identity 3 SAN regexp is not a valid RE2 regular expression/);
  }
  throwsWithCode(
    () => checkIdentityPolicy({ subjectAlternativeName: SAN, issuerRegExp: '[z-a]' }, 0),
    'ERR_INVALID_INPUT',
    /issuer regexp/,
  );
});

test('a hostile SAN cannot make identity matching backtrack', () => {
  // Each pattern is exponential or polynomial for a backtracking engine on this SAN.
  const hostile = `${'a'.repeat(20_000)}!`;
  for (const pattern of ['^(a+)+$', '^(a|a)*$', '^(a|aa)+b', '(.*a){20}x', '^(\\w+\\s?)*$'])
    assert.equal(matches({ subjectAlternativeNameRegExp: pattern, issuer: GH }, signer(hostile)), false, pattern);
  assert.equal(matches({ subjectAlternativeNameRegExp: '^(a+)+!$', issuer: GH }, signer(hostile)), true);
});
