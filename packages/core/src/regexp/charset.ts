// Character sets for the RE2 engine: Perl, POSIX and Unicode classes, case folding, and the
// compiled form the matcher tests code points against. Unicode data comes from the JavaScript
// engine itself (\p{…} property escapes and `iu` case folding), so no tables are embedded here.

/** A predicate over code points (lone surrogates are tested as their own code point). */
export type CharPred = (cp: number) => boolean;

export const MAX_RUNE = 0x10ffff;

/** A compiled set: ASCII answers are remembered (filled on first use), the rest asks the predicate. */
export class CharSet {
  // 0 unknown, 1 in, 2 out; allocated on the first ASCII test.
  #ascii: Uint8Array | undefined;
  readonly #pred: CharPred;

  constructor(pred: CharPred) {
    this.#pred = pred;
  }

  test(cp: number): boolean {
    if (cp >= 128) return this.#pred(cp);
    this.#ascii ??= new Uint8Array(128);
    let v = this.#ascii[cp]!;
    if (v === 0) v = this.#ascii[cp] = this.#pred(cp) ? 1 : 2;
    return v === 1;
  }
}

export const anyChar: CharPred = () => true;
export const notNewline: CharPred = (cp) => cp !== 0x0a;

export function rangesPred(ranges: readonly (readonly [number, number])[]): CharPred {
  if (ranges.length === 1) {
    const [lo, hi] = ranges[0]!;
    return (cp) => cp >= lo && cp <= hi;
  }
  return (cp) => ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
}

export const negate =
  (p: CharPred): CharPred =>
  (cp) =>
    !p(cp);

export function union(preds: readonly CharPred[]): CharPred {
  if (preds.length === 1) return preds[0]!;
  return (cp) => preds.some((p) => p(cp));
}

// ---------------------------------------------------------------------------------------------
// Perl and POSIX classes (ASCII only, as in Go)

type Ranges = readonly (readonly [number, number])[];
const r = (a: string, b = a): readonly [number, number] => [a.codePointAt(0)!, b.codePointAt(0)!];

export const PERL_CLASSES: Readonly<Record<string, Ranges>> = {
  d: [r('0', '9')],
  s: [r('\t', '\n'), r('\f', '\r'), r(' ')],
  w: [r('0', '9'), r('A', 'Z'), r('_'), r('a', 'z')],
};

export const POSIX_CLASSES: Readonly<Record<string, Ranges>> = {
  alnum: [r('0', '9'), r('A', 'Z'), r('a', 'z')],
  alpha: [r('A', 'Z'), r('a', 'z')],
  ascii: [[0, 0x7f]],
  blank: [r('\t'), r(' ')],
  cntrl: [
    [0, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: [r('0', '9')],
  graph: [r('!', '~')],
  lower: [r('a', 'z')],
  print: [r(' ', '~')],
  punct: [r('!', '/'), r(':', '@'), r('[', '`'), r('{', '~')],
  space: [r('\t', '\r'), r(' ')],
  upper: [r('A', 'Z')],
  word: [r('0', '9'), r('A', 'Z'), r('_'), r('a', 'z')],
  xdigit: [r('0', '9'), r('A', 'F'), r('a', 'f')],
};

export const isWordChar = (cp: number): boolean =>
  (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;

// ---------------------------------------------------------------------------------------------
// Unicode classes: \pL, \p{Greek}, \p{^Lu}, looked up like Go's regexp/syntax (names compared
// after dropping spaces, '_' and '-', first letter upper case and the rest lower case).

// biome-ignore format: a table
const GENERAL_CATEGORIES = new Set([
  'C', 'Cc', 'Cf', 'Cn', 'Co', 'Cs', 'L', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu', 'M', 'Mc', 'Me', 'Mn', 'N', 'Nd', 'Nl', 'No',
  'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps', 'S', 'Sc', 'Sk', 'Sm', 'So', 'Z', 'Zl', 'Zp', 'Zs',
]);

// Long General_Category names (Unicode PropertyValueAliases), by canonical name.
// biome-ignore format: a table
const CATEGORY_ALIASES: Readonly<Record<string, string>> = {
  Other: 'C', Control: 'Cc', Cntrl: 'Cc', Format: 'Cf', Unassigned: 'Cn', Privateuse: 'Co', Surrogate: 'Cs',
  Letter: 'L', Casedletter: 'LC', Lowercaseletter: 'Ll', Modifierletter: 'Lm', Otherletter: 'Lo', Titlecaseletter: 'Lt',
  Uppercaseletter: 'Lu', Mark: 'M', Combiningmark: 'M', Spacingmark: 'Mc', Enclosingmark: 'Me', Nonspacingmark: 'Mn',
  Number: 'N', Decimalnumber: 'Nd', Digit: 'Nd', Letternumber: 'Nl', Othernumber: 'No', Punctuation: 'P', Punct: 'P',
  Connectorpunctuation: 'Pc', Dashpunctuation: 'Pd', Closepunctuation: 'Pe', Finalpunctuation: 'Pf',
  Initialpunctuation: 'Pi', Otherpunctuation: 'Po', Openpunctuation: 'Ps', Symbol: 'S', Currencysymbol: 'Sc',
  Modifiersymbol: 'Sk', Mathsymbol: 'Sm', Othersymbol: 'So', Separator: 'Z', Lineseparator: 'Zl',
  Paragraphseparator: 'Zp', Spaceseparator: 'Zs',
};

// Script long names of four letters; other four-letter names are ISO 15924 codes, which Go refuses.
const FOUR_LETTER_SCRIPTS = new Set(['Ahom', 'Cham', 'Kawi', 'Lisu', 'Miao', 'Modi', 'Newa', 'Thai', 'Toto']);

function canonicalName(name: string): string {
  const s = name.replace(/[ _-]/g, '');
  return s.slice(0, 1).toUpperCase() + s.slice(1).toLowerCase();
}

const propertyCache = new Map<string, CharPred>();

function propertyPred(expr: string): CharPred {
  let p = propertyCache.get(expr);
  if (!p) {
    // One code point against a one-character property class: no backtracking is possible.
    const re = new RegExp(`^${expr}$`, 'u');
    p = (cp) => re.test(String.fromCodePoint(cp));
    propertyCache.set(expr, p);
  }
  return p;
}

function validProperty(expr: string): boolean {
  try {
    new RegExp(expr, 'u');
    return true;
  } catch {
    return false;
  }
}

/** A class as a predicate and as a JavaScript class body (for case folding). */
export interface UnicodeClass {
  pred: CharPred;
  source: string;
}

function property(source: string): UnicodeClass {
  return { pred: propertyPred(`[${source}]`), source };
}

function category(gc: string): UnicodeClass {
  // Go's C is Cc|Cf|Co|Cs: unassigned code points (Cn) are not in its tables.
  if (gc === 'C') return property('\\p{gc=Cc}\\p{gc=Cf}\\p{gc=Co}\\p{gc=Cs}');
  return property(`\\p{gc=${gc}}`);
}

function script(name: string): UnicodeClass | undefined {
  if (!/^[A-Za-z][A-Za-z_]*$/.test(name) || name === 'Unknown') return undefined;
  if (name.length === 4 && !FOUR_LETTER_SCRIPTS.has(name)) return undefined;
  const source = `\\p{Script=${name}}`;
  return validProperty(source) ? property(source) : undefined;
}

/** The Unicode class `name` (as written in \p{name}, without a leading ^), or undefined. */
export function unicodeClass(name: string): UnicodeClass | undefined {
  if (name === '') return undefined;
  const canon = canonicalName(name);
  switch (canon) {
    case 'Any':
      return { pred: anyChar, source: rangesSource([[0, MAX_RUNE]]) };
    case 'Assigned':
      return property('\\P{gc=Cn}');
    case 'Ascii':
      return { pred: (cp) => cp <= 0x7f, source: rangesSource([[0, 0x7f]]) };
    case 'Lc':
      return category('LC');
  }
  if (GENERAL_CATEGORIES.has(canon)) return category(canon);
  const byScript = script(name) ?? (canon !== name ? script(canon) : undefined);
  if (byScript) return byScript;
  const alias = CATEGORY_ALIASES[canon];
  return alias === undefined ? undefined : category(alias);
}

// ---------------------------------------------------------------------------------------------
// Case folding: under (?i) a class matches every code point equivalent under Unicode simple case
// folding to one of its members (Go's unicode.SimpleFold orbits), and Go folds before it negates.
// The JavaScript engine knows exactly that relation: a class in an `iu` RegExp matches a
// character when some member has the same simple case folding. So folded tests run one
// character through such a RegExp (no backtracking is possible on one character).

// Outside this range no code point has a case mapping (as Go's minFold/maxFold).
const MIN_FOLD = 0x41;
const MAX_FOLD = 0x1e943;

const hex = (cp: number): string => `\\u{${cp.toString(16)}}`;

/** The JavaScript (u-mode) class body for `ranges`. */
export function rangesSource(ranges: Ranges): string {
  return ranges.map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`)).join('');
}

/** The code points case-fold-equivalent to a member of the class body `source`. */
export function foldedClass(source: string): CharPred {
  if (source === '') return () => false;
  const re = new RegExp(`^[${source}]$`, 'iu');
  return (cp) => re.test(String.fromCodePoint(cp));
}

export function literalPred(cp: number, fold: boolean): CharPred {
  if (!fold || cp < MIN_FOLD || cp > MAX_FOLD) return (x) => x === cp;
  return foldedClass(hex(cp));
}
