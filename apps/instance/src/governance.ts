// Glue between the CA's hooks and the governance pieces: who may sign (src/policy) and the
// hash-chained audit log (src/audit). Every issuance and every refusal is audited; a refusal by
// the signing rules is a 403 with the rule's reason.
import type { CaAuditEvent, SigningRequestContext } from '@waxseal/ca';
import { signingAuthorizer, type SigningRules } from '@waxseal/signing-rules';
import { auditResultForError, type AuditLog } from '@waxseal/audit';
import type { TsaAuditEvent } from '@waxseal/tsa';

export function caAuthorizer(rules: SigningRules): (req: SigningRequestContext) => Promise<void> {
  const authorize = signingAuthorizer(rules);
  return async (req) => {
    authorize({
      issuer: req.principal.issuer,
      subject: typeof req.claims.sub === 'string' ? req.claims.sub : req.principal.subject,
      san: req.principal.san.value,
      claims: { ...req.claims },
      extensions: Object.fromEntries(Object.entries(req.extensions).filter((e): e is [string, string] => typeof e[1] === 'string')),
    });
  };
}

export function caAuditor(audit: AuditLog): (e: CaAuditEvent) => Promise<void> {
  return async (e) => {
    const identity: { issuer?: string; subject?: string; san?: string } = {};
    if (e.issuer ?? e.tokenIssuer) identity.issuer = (e.issuer ?? e.tokenIssuer)!;
    if (e.subject) identity.subject = e.subject;
    if (e.san) identity.san = e.san.value;
    await audit.append({
      actor: e.remoteAddress ?? 'unknown',
      ...(Object.keys(identity).length ? { identity } : {}),
      action: e.result === 'issued' ? 'ca.issue' : 'ca.refuse',
      keyRef: e.caKeyRef,
      ...(e.certificateSha256 ? { digest: e.certificateSha256 } : {}),
      result: e.result === 'issued' ? 'ok' : auditResultForError(e.errorCode),
      ...(e.errorCode ? { errorCode: e.errorCode } : {}),
      detail: {
        ...(e.serial ? { serial: e.serial } : {}),
        ...(e.keyFingerprint ? { keyFingerprint: e.keyFingerprint } : {}),
        ...(e.keyAlgorithm ? { keyAlgorithm: e.keyAlgorithm } : {}),
        ...(e.message ? { message: e.message.slice(0, 500) } : {}),
      },
    });
  };
}

/** Every timestamp the TSA key signs (who asked, the digest they had timestamped) and every refusal. */
export function tsaAuditor(audit: AuditLog): (e: TsaAuditEvent) => Promise<void> {
  return async (e) => {
    await audit.append({
      actor: e.remoteAddress ?? 'unknown',
      action: e.errorCode ? 'tsa.refuse' : 'tsa.timestamp',
      keyRef: e.keyRef,
      ...(e.digest ? { digest: e.digest } : {}),
      result: e.errorCode ? auditResultForError(e.errorCode) : 'ok',
      ...(e.errorCode ? { errorCode: e.errorCode } : {}),
      detail: { ...(e.hash ? { hash: e.hash } : {}), ...(e.message ? { message: e.message.slice(0, 500) } : {}) },
    });
  };
}
