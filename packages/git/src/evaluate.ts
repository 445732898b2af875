// One commit (or tag) against a source policy: which authority accepts its signature, or why
// none does. gitsign-format signatures go through verifyGitSignature (synchronous, offline);
// OpenPGP signatures (e.g. GitHub's web-flow key for commits made in its UI) through openpgp,
// loaded only when a policy names a key.
import { WaxsealError, isWaxsealError, type ErrorCode } from '@waxseal/core';
import { matchIdentities, type Verifier } from '@waxseal/verify';
import { parseGitObject, type SignatureFormat } from './object.ts';
import type { KeyAuthority, KeylessAuthority, SourcePolicy } from './policy.ts';
import { checkCommitterMatch, verifyGitSignature } from './verify.ts';

export interface ObjectVerdict {
  /** The object id. */
  id: string;
  type: 'commit' | 'tag';
  /** `Name <email>` of the author (tagger for tags). */
  author: string;
  subject: string;
  ok: boolean;
  format?: SignatureFormat;
  /** The authority that accepted the signature. */
  authority?: string;
  /** Who signed: the certificate identity (and issuer), or the OpenPGP key. */
  signer?: string;
  /** Why not: the failed check, its error code and a one-line reason. */
  check?: string;
  code?: ErrorCode;
  reason?: string;
}

/** An OpenPGP key authority with its keys read (armored text). */
export interface LoadedKeyAuthority {
  authority: KeyAuthority;
  armoredKeys: string;
}

export interface PolicyContext {
  policy: SourcePolicy;
  /** The instance's trust (needed when the policy has keyless authorities). */
  verifier: Verifier | undefined;
  keys: LoadedKeyAuthority[];
  /** gitsign.matchCommitter: the certificate identity must also be the committer. */
  matchCommitter?: boolean;
}

// Not policy.ts's keylessIdentities: that module loads the YAML parser, which evaluation (and
// its worker threads) do not need.
const identitiesOf = (policy: SourcePolicy) =>
  policy.authorities.flatMap((a) =>
    a.type === 'keyless' ? a.identities.map((identity) => ({ authority: a as KeylessAuthority, identity })) : [],
  );

type OpenPgp = typeof import('openpgp');
let openpgp: Promise<OpenPgp> | undefined;
const keyCache = new WeakMap<LoadedKeyAuthority, Promise<Awaited<ReturnType<OpenPgp['readKeys']>>>>();

function reasonOf(e: unknown): Pick<ObjectVerdict, 'check' | 'code' | 'reason'> {
  if (isWaxsealError(e)) {
    const check = e.check ?? 'verify';
    return { check, code: e.code, reason: e.message.startsWith(`${check}: `) ? e.message.slice(check.length + 2) : e.message };
  }
  return { check: 'verify', code: 'ERR_INTERNAL', reason: e instanceof Error ? e.message : String(e) };
}

async function verifyPgp(ctx: PolicyContext, payload: Uint8Array, signature: string): Promise<{ authority: string; signer: string }> {
  if (ctx.keys.length === 0)
    throw new WaxsealError('ERR_VERIFY_KEY', 'the policy names no OpenPGP key authority', { check: 'key.mismatch' });
  const pgp = await (openpgp ??= import('openpgp'));
  let sig: Awaited<ReturnType<OpenPgp['readSignature']>>;
  try {
    sig = await pgp.readSignature({ armoredSignature: signature });
  } catch (e) {
    throw new WaxsealError('ERR_VERIFY_SIGNATURE', `the OpenPGP signature cannot be read: ${(e as Error).message}`, { check: 'pgp.parse' });
  }
  const message = await pgp.createMessage({ binary: payload });
  const keyIds = sig.getSigningKeyIDs().map((k) => k.toHex());
  for (const k of ctx.keys) {
    let keys = keyCache.get(k);
    if (!keys) keyCache.set(k, (keys = pgp.readKeys({ armoredKeys: k.armoredKeys })));
    const verificationKeys = await keys;
    const matching = verificationKeys.filter((key) => key.getKeyIDs().some((id) => keyIds.includes(id.toHex())));
    if (matching.length === 0) continue;
    const r = await pgp.verify({ message, signature: sig, verificationKeys: matching, format: 'binary' });
    try {
      await r.signatures[0]!.verified;
    } catch (e) {
      throw new WaxsealError('ERR_VERIFY_SIGNATURE', `the OpenPGP signature does not verify: ${(e as Error).message}`, {
        check: 'signature',
      });
    }
    const key = matching[0]!;
    const user = (await key.getPrimaryUser().catch(() => undefined))?.user.userID?.userID;
    return { authority: k.authority.name, signer: `${user ?? 'OpenPGP key'} (${key.getFingerprint().toUpperCase()})` };
  }
  throw new WaxsealError('ERR_VERIFY_KEY', `signed by OpenPGP key ${keyIds.join(', ') || '(unknown)'}, which no key authority lists`, {
    check: 'key.mismatch',
  });
}

/** Checks one raw commit or tag object against the policy. Never throws for a bad object. */
export async function evaluateObject(id: string, type: 'commit' | 'tag', raw: Uint8Array, ctx: PolicyContext): Promise<ObjectVerdict> {
  let obj: ReturnType<typeof parseGitObject>;
  try {
    obj = parseGitObject(type, raw);
  } catch (e) {
    return { id, type, author: '?', subject: '', ok: false, ...reasonOf(e) };
  }
  const a = obj.author;
  const base: ObjectVerdict = { id, type, author: a ? `${a.name} <${a.email}>` : '?', subject: obj.subject, ok: false };
  if (obj.signature === undefined || obj.format === undefined)
    return { ...base, check: 'git.unsigned', code: 'ERR_VERIFY_SIGNATURE', reason: `the ${type} is not signed` };
  base.format = obj.format;
  try {
    if (obj.format === 'x509') {
      const ids = identitiesOf(ctx.policy);
      if (ids.length === 0 || !ctx.verifier)
        throw new WaxsealError('ERR_VERIFY_IDENTITY', 'the policy names no keyless authority', { check: 'identity.san' });
      const v = verifyGitSignature(obj.payload, obj.signature, ctx.verifier, { identities: ids.map((i) => i.identity) });
      if (ctx.matchCommitter) checkCommitterMatch(v.identity, obj.committer);
      const matched = matchIdentities(
        ids.map((i) => i.identity),
        v.identity,
      );
      const authority = ids.find((i) => i.identity === matched)!.authority.name;
      return { ...base, ok: true, authority, signer: `${v.identity.san ?? '?'} (issuer ${v.identity.issuer ?? '?'})` };
    }
    if (obj.format === 'openpgp') return { ...base, ok: true, ...(await verifyPgp(ctx, obj.payload, obj.signature)) };
    throw new WaxsealError('ERR_VERIFY_SIGNATURE', 'SSH signatures are not accepted by source policies', { check: 'signature' });
  } catch (e) {
    return { ...base, ...reasonOf(e) };
  }
}
