import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { regexpPatterns, throwsWithCode } from '@waxseal/testkit';
import { compileRegexp, quoteRegexp } from './regexp.ts';

/** [pattern, input, unanchored answer (Go's MatchString), whole-input answer]. */
type Case = readonly [string, string, boolean, boolean];

function check(cases: readonly Case[]): void {
  for (const [pattern, input, found, whole] of cases) {
    const re = compileRegexp(pattern);
    const what = `${pattern} on ${JSON.stringify(input)}`;
    assert.equal(re.test(input), found, `test: ${what}`);
    assert.equal(re.fullMatch(input), whole, `fullMatch: ${what}`);
  }
}

test('flags: (?i) (?m) (?s) (?U), scoped to their group, negated with -', () => {
  check([
    ['(?i)acme', 'ACME', true, true],
    ['acme', 'ACME', false, false],
    ['(?i:a)b', 'Ab', true, true],
    ['(?i:a)b', 'AB', false, false],
    ['a(?i)b|c', 'aB', true, true],
    ['a(?i)b|c', 'C', true, true], // a flag lasts to the end of its group, across |
    ['(a(?i)b)c', 'aBC', false, false],
    ['(?i)a(?-i)b', 'Ab', true, true],
    ['(?i)a(?-i)b', 'AB', false, false],
    ['(?i-m:^a$)', 'A\n', false, false],
    ['(?s).', '\n', true, true],
    ['.', '\n', false, false],
    ['(?s-s:.)', '\n', false, false],
    ['(?U)a+', 'aaa', true, true], // ungreedy: same yes/no answer
    ['(?m)^b$', 'a\nb\nc', true, false],
    ['^b$', 'a\nb\nc', false, false],
    ['(?)a', 'a', true, true],
  ]);
});

test('anchors: ^ $ \\A \\z with and without (?m), \\b \\B', () => {
  check([
    ['^abc', 'abc', true, true],
    ['^abc', 'xabc', false, false],
    ['abc$', 'abc\n', false, false], // $ is \z without (?m), not "before a final newline"
    ['(?m)abc$', 'abc\n', true, false],
    ['(?m)^abc', 'x\nabc', true, false],
    ['(?m)^abc', 'x\rabc', false, false], // only \n separates lines
    ['\\Aabc\\z', 'abc', true, true],
    ['(?m)\\Aabc\\z', 'x\nabc', false, false],
    ['(?m)$', '', true, true],
    ['a^b', 'ab', false, false],
    ['$a', 'a', false, false],
    ['^*a', 'a', true, true], // an empty-width assertion can be repeated
    ['\\bfoo\\b', 'a foo.', true, false],
    ['\\bfoo\\b', 'afoo', false, false],
    ['\\Bfoo', 'afoo', true, false],
    ['\\bé', 'xé', true, false], // \b is ASCII: é is not a word character
    ['\\b', '', false, false],
    ['\\B', '', true, true],
  ]);
});

test('classes: Perl, POSIX, bracket, Unicode, with (?i) folding before negation', () => {
  check([
    ['^\\d+$', '0123456789', true, true],
    ['\\d', '٣', false, false], // \d is ASCII
    ['^\\s+$', ' \t\n\f\r', true, true],
    ['\\s', '\v', false, false],
    ['\\s', '\u00a0', false, false],
    ['^\\w+$', 'a_Z9', true, true],
    ['\\W', 'é', true, true],
    ['[[:alpha:]]', '1', false, false],
    ['^[[:alpha:][:digit:]_-]+$', 'a-1_', true, true],
    ['[[:^alpha:]]', 'a', false, false],
    ['[[:punct:]]', '~', true, true],
    ['[[:word:]]', '_', true, true],
    ['[]a]', ']', true, true],
    ['[^]a]', 'b', true, true],
    ['[a-]', '-', true, true],
    ['[a-c-e]', '-', true, true],
    ['[^a]', '\n', true, true], // negated classes match newlines
    ['[\\d\\-z]', '-', true, true],
    ['[\\x{1F600}-\\x{1F64F}]', '😃', true, true],
    ['\\pL', 'ж', true, true],
    ['\\p{L}', '1', false, false],
    ['\\PL', '1', true, true],
    ['\\p{^L}', 'a', false, false],
    ['\\p{Greek}', 'λ', true, true],
    ['\\p{Greek}', 'l', false, false],
    ['[\\p{Lu}\\d]', '7', true, true],
    ['\\p{Any}', '\n', true, true],
    ['\\pN', 'Ⅻ', true, true],
    ['(?i)k', '\u212a', true, true], // Kelvin sign folds to k
    ['(?i)s', 'ſ', true, true],
    ['(?i)σ', 'ς', true, true],
    ['(?i)ß', 'ẞ', true, true],
    ['(?i)i', 'İ', false, false], // Turkish İ has no simple case folding
    ['(?i)[a-z]', '\u212a', true, true],
    ['(?i)[^k]', '\u212a', false, false],
    ['(?i)\\W', 'ſ', false, false], // Go folds \w (adding ſ and K) before negating it
    ['(?i)\\P{Lu}', 'a', false, false],
    ['(?i)[[:upper:]]', 'a', true, true],
  ]);
});

test('alternation, repetition, literals, escapes and Unicode input', () => {
  check([
    ['a|b', 'xb', true, false],
    ['a|', '', true, true],
    ['(|a)+b', 'ab', true, true],
    ['ab*', 'a', true, true],
    ['ab+', 'abbb', true, true],
    ['^a{2}$', 'aa', true, true],
    ['^a{2,}$', 'aaaaa', true, true],
    ['^a{2,3}$', 'aaaa', false, false],
    ['^a{0}$', '', true, true],
    ['^(ab){1,2}?$', 'abab', true, true],
    ['a{,2}', 'a{,2}', true, true], // not a repetition: literal
    ['a{', 'a{', true, true],
    ['x{01}', 'x{01}', true, true], // leading zeros make it a literal in Go
    ['^.$', '😀', true, true], // one code point
    ['^..$', '😀', false, false],
    ['😀+', '😀😀', true, true],
    ['\\x{1F600}', '😀', true, true],
    ['\\x41\\101\\0', 'AA\0', true, true], // hex and octal
    ['\\12', '\n', true, true],
    ['\\a\\f\\t\\n\\r\\v', '\x07\f\t\n\r\v', true, true],
    ['\\Qa.b*\\E+', 'a.b**', true, true],
    ['\\Qa.b', 'a.b', true, true],
    ['\\.\\*\\_\\-\\/\\ ', '.*_-/ ', true, true],
    ['(?P<n>a)(?<m>b)(?P<n>c)', 'abc', true, true], // names may repeat, as in Go
    ['()', '', true, true],
    ['(?:)', 'x', true, false],
    ['x*', 'yyy', true, false],
  ]);
});

test('what RE2 refuses is refused with ERR_INVALID_INPUT naming the problem', () => {
  for (const [pattern, why] of [
    ['(a)\\1', /invalid escape sequence: `\\1` \(backreferences are not supported\)/],
    ['(?P<n>a)(?P=n)', /backreferences/],
    ['(?<n>a)\\k<n>', /backreferences/],
    ['(?=a)', /lookaround/],
    ['(?!a)', /lookaround/],
    ['(?<=a)b', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['a*+', /invalid nested repetition operator: `\*\+` \(possessive/],
    ['a++', /possessive/],
    ['a{2}+', /possessive/],
    ['(?>a)', /atomic groups/],
    ['(?#comment)', /comments/],
    ['(?R)', /recursion/],
    ['(?1)', /recursion/],
    ['(?(1)a|b)', /conditionals/],
    ['(?x)a b', /the x flag/],
    ['(?i-)a', /invalid or unsupported Perl syntax: `\(\?i-\)`/],
    ['(?i', /invalid or unsupported Perl syntax/],
    ['a**', /invalid nested repetition operator: `\*\*`/],
    ['a*??', /invalid nested repetition operator/],
    ['*a', /missing argument to repetition operator: `\*`/],
    ['(|*)', /missing argument/],
    ['{2}', /missing argument/],
    ['a{1001}', /invalid repeat count: `\{1001\}`/],
    ['a{2,1}', /invalid repeat count/],
    ['(a{100}){11}', /invalid repeat count/], // nested counts multiply
    ['(', /missing closing \)/],
    ['a)', /unexpected \)/],
    ['[a', /missing closing \]/],
    ['[]', /missing closing \]/],
    ['[z-a]', /invalid character class range: `z-a`/],
    ['[a-\\d]', /invalid escape sequence: `\\d`/],
    ['[[:alphabet:]]', /unknown POSIX class/],
    ['\\p{Klingon}', /invalid character class range: `\\p\{Klingon\}`/],
    ['\\p{Grek}', /unknown Unicode class/], // Go takes script names, not ISO codes
    ['\\p', /invalid character class range/],
    ['\\', /trailing backslash/],
    ['\\Z', /use \\z/],
    ['\\C', /any byte/],
    ['\\u0041', /invalid escape sequence: `\\u`/],
    ['\\x{110000}', /invalid escape sequence/],
    ['\\x4', /invalid escape sequence/],
    ['\\8', /invalid escape sequence/],
    ['\\é', /invalid escape sequence/],
    ['a\ud800', /lone surrogate/],
    ['(?P<a-b>x)', /invalid named capture/],
    ['(?P<>x)', /invalid named capture/],
    [`${'('.repeat(1001)}${')'.repeat(1001)}`, /nests too deeply/],
    [
      '[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}',
      /too large/,
    ],
  ] as const) {
    const e = throwsWithCode(() => compileRegexp(pattern), 'ERR_INVALID_INPUT', why, pattern.slice(0, 40));
    assert.match(e.message, /^invalid regexp "/);
  }
  throwsWithCode(() => compileRegexp('a{10}b{10}', { maxStates: 15 }), 'ERR_INVALID_INPUT', /too large/);
  assert.equal(compileRegexp('a{10}b{10}', { maxStates: 25 }).fullMatch(`${'a'.repeat(10)}${'b'.repeat(10)}`), true);
});

test('Unicode class names are looked up as current Go does', () => {
  // Go looks names up ignoring case, spaces, '_' and '-', and takes long category names.
  check([
    ['\\p{Letter}', 'a', true, true],
    ['\\p{uppercase_letter}', 'A', true, true],
    ['\\p{lu}', 'a', false, false],
    ['\\p{greek}', 'λ', true, true],
    ['\\p{Old_Italic}', '\u{10300}', true, true],
    ['\\p{ASCII}', '\x7f', true, true],
    ['\\p{Assigned}', '\u0378', false, false],
    ['\\p{Cn}', '\u0378', true, true],
    ['\\pC', '\u0378', false, false], // Go's C is Cc|Cf|Co|Cs: unassigned code points are not in it
    ['\\pC', '\u0000', true, true],
  ]);
});

test('quoteRegexp: a quoted string matches exactly itself', () => {
  assert.equal(quoteRegexp('a.b*c\\d[e]{f}(g)|h^i$+?'), 'a\\.b\\*c\\\\d\\[e\\]\\{f\\}\\(g\\)\\|h\\^i\\$\\+\\?');
  const text = fc.string({ unit: fc.constantFrom(...'\\.+*?()|[]{}^$-:<>=!,/ aZ9_\né😀\u212a') });
  fc.assert(
    fc.property(text, text, (s, other) => {
      const re = compileRegexp(quoteRegexp(s));
      return re.fullMatch(s) && re.fullMatch(other) === (other === s) && re.test(`x${s}y`);
    }),
    { numRuns: 500 },
  );
});

// Differential testing against re2js, a port of Go's regexp, on the same pattern and inputs.
// Known, deliberate differences (re2js lags Go): Go lets capture names repeat, looks \p names up
// ignoring case and accepts long category names, and (?< at the very end is a Perl-syntax error.
function re2js(pattern: string): { test(s: string): boolean; testExact(s: string): boolean } | string {
  try {
    return RE2JS.compile(pattern);
  } catch (e) {
    return (e as Error).message;
  }
}

const knownDifference = (err: string): boolean =>
  err.includes('duplicate capture group name') || /invalid character class range: `\\[pP]/.test(err) || err.endsWith('`(?<`');

function agrees(pattern: string, inputs: readonly string[]): boolean {
  const theirs = re2js(pattern);
  if (typeof theirs === 'string' && knownDifference(theirs)) return true;
  let ours: ReturnType<typeof compileRegexp> | string;
  try {
    ours = compileRegexp(pattern);
  } catch (e) {
    ours = (e as Error).message;
  }
  if (typeof theirs === 'string' || typeof ours === 'string') {
    assert.equal(typeof ours, typeof theirs, `${JSON.stringify(pattern)}: re2js says ${theirs}, we say ${ours}`);
    return true;
  }
  for (const s of inputs) {
    assert.equal(ours.test(s), theirs.test(s), `test ${JSON.stringify(pattern)} on ${JSON.stringify(s)}`);
    assert.equal(ours.fullMatch(s), theirs.testExact(s), `fullMatch ${JSON.stringify(pattern)} on ${JSON.stringify(s)}`);
  }
  return true;
}

test('differential: patterns from an RE2 grammar give the same answers as re2js', () => {
  const atom = fc.constantFrom(
    ...['a', 'b', 'A', 'K', 'k', 's', 'ſ', '\\x{212A}', 'é', 'É', 'σ', 'Σ', '😀', '\\x{1F600}', '.', '\\n', '\\.', '{'],
    ...['\\d', '\\D', '\\w', '\\W', '\\s', '\\S', '\\pL', '\\PL', '\\p{Lu}', '\\p{Greek}', '\\pN', '[^\\pL]', '[\\p{Lu}\\d]'],
    ...['[ab]', '[^a]', '[a-c]', '[^\\n]', '[]a]', '[a-]', '[[:alpha:]]', '[[:^digit:]]', '[[:upper:]]', '[\\d_]'],
    ...['\\b', '\\B', '^', '$', '\\A', '\\z', '(?m:^)', '(?m:$)', '(?s:.)', '(?i:k)', '(?i)', '(?-i)', '(?m)', '(?s)'],
    ...['\\x41', '\\101', '\\Q.*\\E', 'a{,2}', '()', '(?:)', '(|a)', '(?P<n>a)', '(?<m>b)'],
  );
  const quantifier = fc.constantFrom('*', '+', '?', '*?', '+?', '??', '{2}', '{1,3}', '{0,2}', '{2,}', '{0}', '{1}');
  const pattern = regexpPatterns({ atom, quantifier, flagGroup: fc.constantFrom('(?i:', '(?im:', '(?-m:', '(?s:') });
  const unit = fc.constantFrom(
    ...['a', 'b', 'c', 'A', 'K', 'k', '\u212a', 's', 'S', 'ſ', '1', '_', ' ', '.', '\n', '😀', 'é', 'É'],
    'σ',
    'ς',
    '{',
  );
  const inputs = fc.array(fc.string({ unit, maxLength: 10 }), { minLength: 1, maxLength: 4 });
  fc.assert(fc.property(pattern, inputs, agrees), { numRuns: 1500 });
});

test('differential: arbitrary strings of metacharacters are accepted or refused as re2js does', () => {
  const unit = fc.constantFrom(
    ...['(', ')', '[', ']', '{', '}', '|', '*', '+', '?', '^', '$', '.', '\\', '-', ':', '<', '>', '=', '!', ','],
    ...['P', 'p', 'Q', 'E', 'd', 'D', 'w', 's', 'b', 'B', 'A', 'z', 'Z', 'x', 'k', 'C', 'L', 'i', 'm', 'U', 'n'],
    ...['0', '1', '2', '7', '8', 'a', '_', 'é', '#'],
  );
  const inputs = fc.array(
    fc.string({ unit: fc.constantFrom('a', 'A', '1', '0', '_', ' ', '\n', 'é', '{', '}', '-', '\x07'), maxLength: 8 }),
    {
      minLength: 1,
      maxLength: 3,
    },
  );
  fc.assert(fc.property(fc.string({ unit, maxLength: 14 }), inputs, agrees), { numRuns: 3000 });
});

test('matching is linear: work is bounded by pattern size × input length, whatever both contain', () => {
  // Catastrophic for a backtracking engine (exponential or high-degree polynomial on this input).
  const input = 'a'.repeat(50_000);
  for (const pattern of ['(a*)*b', '(a|a)*$b', '(a|aa)+b', '(.*a){20}b', '^(\\w+\\s?)*$!', '(?i)(a+)+B']) {
    const re = compileRegexp(pattern);
    for (const whole of [false, true]) {
      const { matched, steps } = re.run(input, whole);
      assert.equal(matched, false, pattern);
      assert.ok(steps <= 2 * re.size * (input.length + 1), `${pattern}: ${steps} steps for size ${re.size}`);
      const longer = `${input}${input}`;
      assert.ok(re.run(longer, whole).steps <= 2 * re.size * (longer.length + 1), pattern);
    }
  }
  const re = compileRegexp('(a*)*b');
  assert.equal(re.size, 5);
  assert.equal(re.test(`${input}b`), true);
  assert.equal(re.fullMatch(`${input}b`), true);
});
