import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { parseSignedNote, formatSignedNote, parseCheckpoint, formatCheckpoint, noteVerifier, noteSignedBy, noteKeyId } from './note.ts';
import { throwsWithCode } from '@waxseal/testkit';
import { publicKeyFromSpki } from './crypto.ts';
import { fromBase64, toBase64 } from './bytes.ts';

test('public-good log2025-1 key ID matches the published log ID', () => {
  // Ed25519 key of log2025-1.rekor.sigstore.dev and its logId from the public trusted root.
  const spki = fromBase64('MCowBQYDK2VwAyEAt8rlp1knGwjfbcXAYPYAkn0XiLz1x8O4t0YkEhie244=');
  const id = noteKeyId('log2025-1.rekor.sigstore.dev', publicKeyFromSpki(spki));
  assert.equal(toBase64(id), 'zxGZFVvd0FEmjR8WrFwMdcAJ9vtaY/QXf44Y1wUeP6A=');
});

test('checkpoint notes round-trip and verify; tampering and unknown signers are handled', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = publicKeyFromSpki(publicKey.export({ format: 'der', type: 'spki' }));
  const v = noteVerifier('log.example', key);
  const text = formatCheckpoint({ origin: 'log.example', size: 5, rootHash: new Uint8Array(32).fill(7), extensions: [] });
  const sig = new Uint8Array(sign(null, Buffer.from(text), privateKey));
  const note = formatSignedNote(text, [
    { name: 'witness.example', keyHint: Uint8Array.of(1, 2, 3, 4), signature: new Uint8Array(72) },
    { name: 'log.example', keyHint: v.keyHint, signature: sig },
  ]);
  const parsed = parseSignedNote(note);
  assert.equal(parsed.text, text);
  assert.ok(noteSignedBy(parsed, v));
  assert.equal(parseCheckpoint(parsed.text).size, 5);
  assert.equal(formatSignedNote(parsed.text, parsed.signatures), note);
  const tampered = parseSignedNote(note.replace('\n5\n', '\n6\n'));
  assert.ok(!noteSignedBy(tampered, v));
  throwsWithCode(() => parseSignedNote('no signatures\n'), 'ERR_INVALID_INPUT', /blank line/);
  throwsWithCode(() => parseCheckpoint('origin\n01\nAAAA\n'), 'ERR_INVALID_INPUT', /decimal/);
});
