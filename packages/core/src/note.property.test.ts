// C2SP signed notes and checkpoints have one spelling: whatever parseSignedNote/parseCheckpoint
// accept, formatSignedNote/formatCheckpoint give back byte for byte; anything else is refused
// with a WaxsealError. Seeds: generated notes, plus real Rekor checkpoints from the shared
// vectors when they are present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { hostileText, parseOrRefuse, throwsWithCode } from '@waxseal/testkit';
import { formatCheckpoint, formatSignedNote, parseCheckpoint, parseSignedNote, type Checkpoint, type NoteSignature } from './note.ts';
import { toBase64 } from './bytes.ts';

const name = fc.stringMatching(/^[a-z0-9.\-/]{1,20}$/);
const signature: fc.Arbitrary<NoteSignature> = fc.record({
  name,
  keyHint: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  signature: fc.uint8Array({ minLength: 1, maxLength: 72 }),
});
const checkpoint: fc.Arbitrary<Checkpoint> = fc.record({
  origin: name,
  size: fc.nat(),
  rootHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  extensions: fc.array(fc.stringMatching(/^[ -~]{1,20}$/), { maxLength: 2 }),
});
const note = fc
  .tuple(checkpoint, fc.array(signature, { minLength: 1, maxLength: 3 }))
  .map(([c, sigs]) => formatSignedNote(formatCheckpoint(c), sigs));

/** Checkpoint envelopes of the Rekor entries in the shared vectors (none when they are absent). */
function vectorCheckpoints(): string[] {
  const dir = process.env.WAXSEAL_VECTORS ?? resolve(new URL('.', import.meta.url).pathname, '../../../../shared/vectors');
  if (!existsSync(join(dir, 'index.json'))) return [];
  const out = new Set<string>();
  for (const c of readdirSync(dir)) {
    const f = join(dir, c, 'bundle.sigstore.json');
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/"envelope":\s*("(?:[^"\\]|\\.)*")/g)) out.add(JSON.parse(m[1]!) as string);
  }
  return [...out];
}

const real = vectorCheckpoints();
const seeds = [...fc.sample(note, { numRuns: 30, seed: 3 }), ...real.slice(0, 30)];

test('property: parseSignedNote refuses with a WaxsealError or formatSignedNote gives back its input', () => {
  fc.assert(
    fc.property(hostileText(seeds), (text) => {
      const n = parseOrRefuse(() => parseSignedNote(text), JSON.stringify(text));
      if (n) assert.equal(formatSignedNote(n.text, n.signatures), text);
    }),
    { numRuns: 4000 },
  );
});

test('property: parseCheckpoint refuses with a WaxsealError or formatCheckpoint gives back its input', () => {
  const texts = seeds.map((s) => s.slice(0, s.lastIndexOf('\n\n') + 1));
  fc.assert(
    fc.property(hostileText(texts), (text) => {
      const cp = parseOrRefuse(() => parseCheckpoint(text), JSON.stringify(text));
      if (cp) assert.equal(formatCheckpoint(cp), text);
    }),
    { numRuns: 4000 },
  );
});

test('property: formatted notes and checkpoints parse back to the same values', () => {
  fc.assert(
    fc.property(checkpoint, fc.array(signature, { minLength: 1, maxLength: 3 }), (c, sigs) => {
      const text = formatCheckpoint(c);
      const n = parseSignedNote(formatSignedNote(text, sigs));
      assert.equal(n.text, text);
      assert.deepEqual(
        n.signatures.map((s) => [s.name, toBase64(s.keyHint), toBase64(s.signature)]),
        sigs.map((s) => [s.name, toBase64(s.keyHint), toBase64(s.signature)]),
      );
      const back = parseCheckpoint(n.text);
      assert.deepEqual({ ...back, rootHash: toBase64(back.rootHash) }, { ...c, rootHash: toBase64(c.rootHash) });
    }),
    { numRuns: 300 },
  );
  for (const r of real) assert.equal(formatSignedNote(parseSignedNote(r).text, parseSignedNote(r).signatures), r);
});

test('base64 with spare bits set, names with "+" and control characters are refused', () => {
  const text = formatCheckpoint({ origin: 'log.example', size: 1, rootHash: new Uint8Array(32), extensions: [] });
  const good = formatSignedNote(text, [{ name: 'log.example', keyHint: Uint8Array.of(1, 2, 3, 4), signature: Uint8Array.of(5) }]);
  assert.match(good, / AQIDBAU=\n$/);
  throwsWithCode(() => parseSignedNote(good.replace(' AQIDBAU=', ' AQIDBAV=')), 'ERR_INVALID_INPUT', /canonical/);
  throwsWithCode(() => parseSignedNote(good.replace(' AQIDBAU=', ' AQIDBAU')), 'ERR_INVALID_INPUT', /canonical/);
  throwsWithCode(() => parseSignedNote(good.replace('— log.example', '— log+example')), 'ERR_INVALID_INPUT', /malformed signature line/);
  throwsWithCode(() => parseSignedNote(good.replace('log.example\n1', 'log.example\t\n1')), 'ERR_INVALID_INPUT', /control characters/);
  throwsWithCode(() => parseSignedNote(good.replace('\n1\n', '\r\n1\n')), 'ERR_INVALID_INPUT', /control characters/);
  // The all-zero root hash spelled with spare bits set in its last character.
  throwsWithCode(() => parseCheckpoint(text.replace('AAA=', 'AAB=')), 'ERR_INVALID_INPUT', /canonical/);
});
