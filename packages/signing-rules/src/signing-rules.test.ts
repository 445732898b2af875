import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { regexpPatterns } from '@waxseal/testkit';
import { isWaxsealError } from '../../core/src/errors.ts';
import {
  compileSigningRules,
  parseSigningRules,
  signingAuthorizer,
  MAX_VALUE_LENGTH,
  type SigningContext,
  type SigningRulesConfig,
} from './signing-rules.ts';

const GH = 'https://token.actions.githubusercontent.com';

function gh(overrides: Partial<SigningContext> & { ref?: string; repository?: string; workflow?: string } = {}): SigningContext {
  const repository = overrides.repository ?? 'acme/app';
  const ref = overrides.ref ?? 'refs/tags/v1.2.3';
  const workflow = overrides.workflow ?? 'release.yml';
  return {
    issuer: GH,
    subject: `repo:${repository}:ref:${ref}`,
    san: `https://github.com/${repository}/.github/workflows/${workflow}@${ref}`,
    claims: { repository, ref, event_name: 'push', run_attempt: '1', repository_id: 123456, groups: ['dev', 'release'] },
    extensions: { sourceRepositoryRef: ref, buildTrigger: 'push' },
    ...overrides,
  };
}

const githubRelease: SigningRulesConfig = {
  allow: [
    {
      name: 'release',
      issuer: GH,
      san: { glob: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*' },
      claims: { repository: 'acme/app', ref: { glob: 'refs/tags/*' } },
    },
  ],
};

/** Each rule set with one pattern, for matcher tests. */
function sanMatches(matcher: unknown, san: string): boolean {
  return compileSigningRules({ allow: [{ san: matcher as string }] })({ issuer: 'i', subject: 's', san, claims: {}, extensions: {} })
    .allowed;
}

test('the GitHub release example: only acme/app release.yml on a tag may sign', () => {
  const decide = compileSigningRules(githubRelease);
  assert.deepEqual(decide(gh()), { allowed: true, rule: 'release', reason: 'matches allow rule "release"' });
  for (const [why, ctx] of [
    ['branch', gh({ ref: 'refs/heads/main' })],
    ['other repo', gh({ repository: 'acme/other' })],
    ['other workflow', gh({ workflow: 'ci.yml' })],
    ['other issuer', { ...gh(), issuer: 'https://gitlab.com' }],
    ['tag with a slash (the SAN * stops at /)', gh({ ref: 'refs/tags/release/1.0' })],
  ] as const) {
    const d = decide(ctx);
    assert.equal(d.allowed, false, why);
    assert.equal(d.rule, undefined);
    assert.match(d.reason, /^no allow rule matches \(closest rule "release": .* does not match\)$/, why);
  }
  // The reason names the failing field, not the pattern.
  assert.equal(decide(gh({ ref: 'refs/heads/main' })).reason, 'no allow rule matches (closest rule "release": san does not match)');
  assert.doesNotMatch(decide(gh({ ref: 'refs/heads/main' })).reason, /refs\/tags/);
});

test('deny wins over allow; no rules allows all; deny-only is a deny list; default overrides', () => {
  const both = compileSigningRules({ ...githubRelease, deny: [{ name: 'compromised-tag', claims: { ref: 'refs/tags/v1.2.3' } }] });
  assert.deepEqual(both(gh()), { allowed: false, rule: 'compromised-tag', reason: 'matches deny rule "compromised-tag"' });
  assert.equal(both(gh({ ref: 'refs/tags/v1.2.4' })).allowed, true);

  assert.deepEqual(compileSigningRules({})(gh()), { allowed: true, reason: 'no signing rules configured' });
  assert.equal(compileSigningRules(undefined)(gh()).allowed, true);
  assert.equal(compileSigningRules({ allow: [], deny: [] })(gh()).allowed, true);

  const denyList = compileSigningRules({ deny: [{ san: { glob: 'https://github.com/evil/**' } }] });
  assert.equal(denyList(gh()).allowed, true);
  assert.deepEqual(denyList(gh({ repository: 'evil/x' })), { allowed: false, rule: 'deny[0]', reason: 'matches deny rule "deny[0]"' });

  const closed = compileSigningRules({ deny: [{ issuer: 'x' }], default: 'deny' });
  assert.deepEqual(closed(gh()), { allowed: false, reason: 'no allow rule matches' });
  const open = compileSigningRules({ allow: [{ issuer: 'x' }], default: 'allow' });
  assert.equal(open(gh()).allowed, true);
});

test('claims: arrays match any element, numbers compare as JSON text, missing claims never match', () => {
  const r = (claims: Record<string, unknown>) => compileSigningRules({ allow: [{ claims: claims as never }] });
  assert.equal(r({ groups: 'release' })(gh()).allowed, true);
  assert.equal(r({ groups: 'admin' })(gh()).allowed, false);
  assert.equal(r({ repository_id: '123456' })(gh()).allowed, true);
  assert.equal(r({ repository_id: { regexp: '\\d+' } })(gh()).allowed, true);
  assert.equal(r({ nope: { glob: '**' } })(gh()).allowed, false);
  // A missing claim does not trigger a deny rule either.
  assert.equal(compileSigningRules({ deny: [{ claims: { nope: { glob: '**' } } }] })(gh()).allowed, true);
  // Prototype keys are not claims.
  assert.equal(r({ constructor: { glob: '**' } })(gh()).allowed, false);
  assert.equal(r(JSON.parse('{"__proto__": {"glob": "**"}}') as Record<string, unknown>)(gh()).allowed, false);
});

test('extensions match by Fulcio name or OID; unknown names are refused', () => {
  const byName = compileSigningRules({ allow: [{ extensions: { sourceRepositoryRef: { glob: 'refs/tags/*' } } }] });
  assert.equal(byName(gh()).allowed, true);
  assert.equal(byName(gh({ ref: 'refs/heads/x', extensions: { sourceRepositoryRef: 'refs/heads/x' } })).allowed, false);
  const byOid = compileSigningRules({ allow: [{ extensions: { '1.3.6.1.4.1.57264.1.20': 'push' } }] });
  assert.equal(byOid(gh()).allowed, true);
  assert.throws(
    () => compileSigningRules({ allow: [{ extensions: { sourceRepoRef: 'x' } }] }),
    (e) => isWaxsealError(e, 'ERR_CONFIG') && /unknown Fulcio extension/.test(e.message),
  );
});

test('glob edge cases', () => {
  const cases: Array<[string, string, boolean]> = [
    ['refs/tags/*', 'refs/tags/v1', true],
    ['refs/tags/*', 'refs/tags/', true],
    ['refs/tags/*', 'refs/tags/a/b', false],
    ['refs/tags/**', 'refs/tags/a/b', true],
    ['refs/tags/**', 'refs/tags', false],
    ['**', '', true],
    ['**', 'anything/at/all\n', true],
    ['*', 'a/b', false],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['a?c', 'ac', false],
    ['a?c', 'a😀c', true],
    ['a.c', 'abc', false],
    ['a.c', 'a.c', true],
    ['[ab]', 'a', false],
    ['[ab]', '[ab]', true],
    ['(x|y)+', '(x|y)+', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['*@example.com', 'alice@example.com', true],
    ['*@example.com', 'alice@example.com.evil', false],
    ['*@example.com', 'alice@evil.com?x=@example.com', true], // * spans anything but '/'
    ['https://github.com/acme/*/.github/**', 'https://github.com/acme/x/.github/workflows/a.yml@refs/heads/main', true],
    ['https://github.com/acme/*/.github/**', 'https://github.com/acme/x/y/.github/w', false],
    ['', '', true],
    ['', 'a', false],
  ];
  for (const [glob, value, want] of cases) assert.equal(sanMatches({ glob }, value), want, `${glob} vs ${JSON.stringify(value)}`);
  assert.throws(
    () => compileSigningRules({ allow: [{ san: { glob: 'abc\\' } }] }),
    (e) => isWaxsealError(e, 'ERR_CONFIG') && /lone backslash/.test(e.message),
  );
});

test('regexps are anchored to the whole value', () => {
  assert.equal(sanMatches({ regexp: 'acme' }, 'acme'), true);
  assert.equal(sanMatches({ regexp: 'acme' }, 'xacme'), false);
  assert.equal(sanMatches({ regexp: 'acme' }, 'acmex'), false);
  assert.equal(sanMatches({ regexp: 'a|b' }, 'a'), true);
  // Alternation cannot escape the anchors: this is ^(?:a|b)$, not ^a|b$.
  assert.equal(sanMatches({ regexp: 'a|b' }, 'xb'), false);
  assert.equal(sanMatches({ regexp: 'a|b' }, 'ax'), false);
  // Users' own ^…$ are accepted and change nothing.
  assert.equal(sanMatches({ regexp: '^https://github\\.com/acme/[^/]+$' }, 'https://github.com/acme/app'), true);
  assert.equal(sanMatches({ regexp: '^https://github\\.com/acme/[^/]+$' }, 'https://github.com/acme/app/x'), false);
  assert.equal(sanMatches({ regexp: 'a\\$' }, 'a$'), true);
  // '.' does not match a line terminator: a newline smuggled into a claim cannot extend a match.
  assert.equal(sanMatches({ regexp: 'repo:acme/.*' }, 'repo:acme/app\nrepo:evil'), false);
  assert.equal(sanMatches({ regexp: '.*@example\\.com' }, 'alice@example.com'), true);
  assert.equal(sanMatches({ regexp: '.*@example\\.com' }, 'alice@example.com.evil.org'), false);
  // (?m) inside the pattern cannot loosen the whole-value anchoring.
  assert.equal(sanMatches({ regexp: '(?m)^acme$' }, 'acme\nevil'), false);
  assert.equal(sanMatches({ regexp: '(?m)acme$\n.*' }, 'acme\nevil'), true);
});

test('regexps use Go RE2 syntax, as Fulcio and cosign do', () => {
  assert.equal(sanMatches({ regexp: '(?i)ALICE@example\\.COM' }, 'alice@Example.com'), true);
  assert.equal(sanMatches({ regexp: '\\Arepo:acme/\\w+\\z' }, 'repo:acme/app'), true);
  assert.equal(sanMatches({ regexp: '[[:alpha:]]+-\\d{1,3}' }, 'release-12'), true);
  assert.equal(sanMatches({ regexp: '\\pL+' }, 'Zoë'), true);
  assert.equal(sanMatches({ regexp: '.*\\bmain\\b.*' }, 'refs/heads/main'), true);
  assert.equal(sanMatches({ regexp: '.*\\bmain\\b.*' }, 'refs/heads/mainline'), false);
  // ^ and $ in the middle are valid RE2 and simply never match there.
  assert.equal(sanMatches({ regexp: 'a^b' }, 'ab'), false);
  assert.equal(sanMatches({ regexp: 'a{1000}' }, 'a'.repeat(1000)), true);
});

test('bad and unsupported regexps are refused at load with ERR_CONFIG', () => {
  for (const [pattern, why] of [
    ['(', /invalid regexp/],
    ['a{2,1}', /invalid regexp.*invalid repeat count/],
    ['[z-a]', /invalid regexp.*invalid character class range/],
    ['(a)\\1', /backreferences/],
    ['(?<n>a)\\k<n>', /backreferences/],
    ['(?=a)a', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['a*+', /possessive/],
    ['\\u0061', /invalid escape/], // JavaScript syntax that RE2 does not have
    ['a{1001}', /invalid repeat count/],
    ['(((a{100}){100}){100})', /invalid repeat count/],
    ['[a-z]{1000}[a-z]{1000}[a-z]{1000}', /too large/],
    ['x'.repeat(1025), /longer than 1024/],
  ] as const) {
    assert.throws(
      () => compileSigningRules({ allow: [{ san: { regexp: pattern } }] }),
      (e) => isWaxsealError(e, 'ERR_CONFIG') && why.test(e.message),
      pattern.slice(0, 40),
    );
  }
});

test('malicious patterns and values cannot hang the matcher (linear-time NFA)', () => {
  // Each is catastrophic for a backtracking engine on this input (2^n or n^k steps).
  const evil = `${'a'.repeat(MAX_VALUE_LENGTH - 1)}!`;
  for (const regexp of ['(a+)+', '(a|a)*', '(a|aa)+b', '(.*a){12}', 'a*a*a*a*a*a*a*a*b', '(\\w+\\s?)*$', '(a*)*b']) {
    assert.equal(sanMatches({ regexp }, evil), false, regexp);
  }
  assert.equal(sanMatches({ glob: '*a*a*a*a*a*a*a*a*a*a*b' }, evil), false);
  assert.equal(sanMatches({ glob: '**a**a**a**a**a**b' }, evil), false);
  assert.equal(sanMatches({ regexp: '(a+)+!' }, evil), true);
  // Over-long values are refused outright, so a deny rule cannot be dodged by padding.
  const decide = compileSigningRules({ deny: [{ san: { glob: '**evil**' } }] });
  const d = decide({ issuer: 'i', subject: 's', san: `evil${'x'.repeat(MAX_VALUE_LENGTH)}`, claims: {}, extensions: {} });
  assert.equal(d.allowed, false);
  assert.match(d.reason, /longer than/);
  assert.equal(
    decide({ issuer: 'i', subject: 's', san: 'ok', claims: { big: ['x'.repeat(MAX_VALUE_LENGTH + 1)] }, extensions: {} }).allowed,
    false,
  );
});

test('regexps match whole values exactly as RE2 (re2js) does', () => {
  const atom = fc.constantFrom(
    'a',
    'b',
    '.',
    '\\d',
    '\\w',
    '\\s',
    '\\D',
    '\\W',
    '\\S',
    '[ab]',
    '[^a]',
    '[a-c]',
    '\\.',
    '/',
    '[\\d_]',
    '\\x{61}',
    '😀',
    '\\n',
    '^',
    '$',
    '(?i:A)',
    '(?s:.)',
    '(?m:$)',
  );
  const regex = regexpPatterns({ atom, quantifier: fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '{0,2}', '{0,}', '*?', '+?') });
  const input = fc.string({ unit: fc.constantFrom('a', 'b', 'A', 'c', '1', '_', ' ', '.', '/', '\n', '😀'), maxLength: 12 });
  fc.assert(
    fc.property(regex, input, (re, s) => sanMatches({ regexp: re }, s) === RE2JS.compile(re).testExact(s)),
    { numRuns: 1000 },
  );
});

test('rules with typos or no conditions are refused', () => {
  for (const [cfg, why] of [
    [{ allow: [{}] }, /states no condition/],
    [{ allow: [{ name: 'x' }] }, /states no condition/],
    [{ allow: [{ isuer: GH }] }, /unknown field "isuer"/],
    [{ allwo: [] }, /unknown field "allwo"/],
    [{ allow: { issuer: GH } }, /must be a list/],
    [{ allow: [{ san: { glob: 'a', regexp: 'b' } }] }, /exactly one/],
    [{ allow: [{ san: { wildcard: 'a' } }] }, /unknown matcher/],
    [{ allow: [{ san: [] }] }, /empty list/],
    [{ allow: [{ san: 5 }] }, /must be a string/],
    [{ allow: [{ claims: ['x'] }] }, /map of name/],
    [{ default: 'maybe' }, /must be "allow" or "deny"/],
    [[], /must be a map/],
  ] as const) {
    assert.throws(
      () => compileSigningRules(cfg),
      (e) => isWaxsealError(e, 'ERR_CONFIG') && why.test(e.message),
      JSON.stringify(cfg),
    );
  }
});

test('rules load from YAML and JSON; a bad regexp fails at load', () => {
  const yaml = `
allow:
  - name: release
    issuer: ${GH}
    san:
      glob: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
    claims:
      repository: acme/app
      ref: { glob: "refs/tags/*" }
deny:
  - san: [ { exact: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/bad" }, { regexp: ".*@refs/tags/v0\\\\..*" } ]
`;
  const decide = parseSigningRules(yaml);
  assert.equal(decide(gh()).allowed, true);
  assert.equal(decide(gh({ ref: 'refs/tags/bad' })).allowed, false);
  assert.equal(decide(gh({ ref: 'refs/tags/v0.9' })).allowed, false);
  assert.equal(parseSigningRules(JSON.stringify(githubRelease))(gh()).allowed, true);
  assert.throws(
    () => parseSigningRules('allow:\n  - san: { regexp: "(unclosed" }\n'),
    (e) => isWaxsealError(e, 'ERR_CONFIG') && /allow\[0\]\.san invalid regexp/.test(e.message),
  );
  assert.throws(
    () => parseSigningRules('allow: [ {'),
    (e) => isWaxsealError(e, 'ERR_CONFIG') && /not valid YAML/.test(e.message),
  );
});

test('the authorizer throws ERR_POLICY_DENIED naming the identity and the reason', () => {
  const authorize = signingAuthorizer(githubRelease);
  assert.equal(authorize(gh()).rule, 'release');
  assert.throws(
    () => authorize(gh({ ref: 'refs/heads/main' })),
    (e) =>
      isWaxsealError(e, 'ERR_POLICY_DENIED') &&
      e.status === 403 &&
      e.message ===
        `https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main (issuer ${GH}) is not allowed to sign: no allow rule matches (closest rule "release": san does not match)`,
  );
  const denyAll = signingAuthorizer(compileSigningRules({ deny: [{ issuer: { glob: '**' } }] }));
  assert.throws(
    () => denyAll(gh()),
    (e) => isWaxsealError(e, 'ERR_POLICY_DENIED') && e.detail?.['rule'] === 'deny[0]',
  );
});
