import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AuditLog } from './log.ts';
import { MemoryAuditStore } from './store.ts';
import { auditedSigner } from './signer.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import { publicKeyFromSpki, verifySignature } from '../../core/src/crypto.ts';
import { WaxsealError } from '../../core/src/errors.ts';
import { rejectsWithCode } from '@waxseal/testkit';

test('an audited signer records each key use (group-committed) and fails closed', async () => {
  const store = new MemoryAuditStore();
  const audit = new AuditLog(store);
  const inner = generateSigner('ecdsa-p256', 'file:///keys/log.key');
  const signer = auditedSigner(inner, audit, { actor: 'log', action: 'log.sign' });
  const msgs = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`checkpoint ${i}\n`));
  const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
  const pub = publicKeyFromSpki(signer.publicKeySpki);
  sigs.forEach((s, i) => assert.ok(verifySignature(pub, msgs[i]!, s)));
  assert.equal(store.records.length, 50);
  assert.deepEqual(new Set(store.records.map((r) => r.digest)), new Set(msgs.map((m) => createHash('sha256').update(m).digest('hex'))));
  assert.ok(store.records.every((r) => r.keyRef === 'file:///keys/log.key' && r.action === 'log.sign' && r.result === 'ok'));
  await audit.verify();

  // No record, no signature.
  store.appendMany = async () => {
    throw new WaxsealError('ERR_IO', 'disk full');
  };
  await rejectsWithCode(signer.sign(msgs[0]!), 'ERR_IO', /disk full/);
});
