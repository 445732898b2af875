// A Signer that records every use of its key in the audit log before handing out the
// signature (fail closed: no record, no signature). Used for keys whose uses have no request of
// their own to audit, such as the log key signing checkpoints and SETs.
import { createHash } from 'node:crypto';
import type { Signer } from '@waxseal/keys';
import type { AuditLog } from './log.ts';

export function auditedSigner(inner: Signer, audit: AuditLog, o: { actor: string; action: string }): Signer {
  return {
    kind: inner.kind,
    publicKeySpki: inner.publicKeySpki,
    hash: inner.hash,
    keyRef: inner.keyRef,
    async sign(message: Uint8Array): Promise<Uint8Array> {
      const digest = createHash('sha256').update(message).digest('hex');
      let signature: Uint8Array;
      try {
        signature = await inner.sign(message);
      } catch (e) {
        await audit.record({
          actor: o.actor,
          action: o.action,
          keyRef: inner.keyRef,
          digest,
          result: 'error',
          errorCode: (e as { code?: string }).code ?? 'ERR_SIGNER',
        });
        throw e;
      }
      await audit.record({
        actor: o.actor,
        action: o.action,
        keyRef: inner.keyRef,
        digest,
        result: 'ok',
        detail: { bytes: message.length },
      });
      return signature;
    },
    ...(inner.close ? { close: () => inner.close!() } : {}),
  };
}
