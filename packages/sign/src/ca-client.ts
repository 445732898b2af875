// Client for a Fulcio v2 compatible CA: POST /api/v2/signingCert with a public key and a proof
// of possession, returning the certificate chain (leaf first).
import { WaxsealError, toBase64, parseCertificatesPem, type Certificate } from '@waxseal/core';
import { postBytes } from './http-client.ts';
import { challengeSubject } from './identity-token.ts';
import type { EphemeralKey } from './ephemeral-key.ts';

interface SigningCertificateResponse {
  signedCertificateEmbeddedSct?: { chain?: { certificates?: string[] } };
  signedCertificateDetachedSct?: { chain?: { certificates?: string[] }; signedCertificateTimestamp?: string };
}

export async function requestSigningCertificate(o: {
  caUrl: string;
  token: string;
  key: EphemeralKey;
  fetch?: typeof fetch;
}): Promise<Certificate[]> {
  const challenge = challengeSubject(o.token);
  const body = JSON.stringify({
    credentials: { oidcIdentityToken: o.token },
    publicKeyRequest: {
      publicKey: { algorithm: 'ECDSA', content: o.key.publicKeyPem },
      proofOfPossession: toBase64(o.key.proveChallenge(challenge)),
    },
  });
  let res: Awaited<ReturnType<typeof postBytes>>;
  try {
    res = await postBytes(`${o.caUrl.replace(/\/$/, '')}/api/v2/signingCert`, body, {
      what: 'the CA',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
  } catch (e) {
    // The key and the proof of possession are ours; what the CA turns down with 400 is the
    // identity the token claims (not an e-mail address, claims missing): an identity refusal.
    if (e instanceof WaxsealError && e.code === 'ERR_INVALID_INPUT' && e.detail?.status === 400)
      throw new WaxsealError('ERR_IDENTITY_CLAIMS', e.message, { cause: e, detail: e.detail });
    throw e;
  }
  let parsed: SigningCertificateResponse;
  try {
    parsed = JSON.parse(Buffer.from(res.body).toString('utf8')) as SigningCertificateResponse;
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the CA answered with something that is not JSON');
  }
  const pems = parsed.signedCertificateEmbeddedSct?.chain?.certificates ?? parsed.signedCertificateDetachedSct?.chain?.certificates;
  if (!pems?.length) throw new WaxsealError('ERR_INVALID_INPUT', 'the CA response has no certificate chain');
  const chain = pems.flatMap((p) => parseCertificatesPem(p));
  if (!chain.length) throw new WaxsealError('ERR_INVALID_INPUT', 'the CA response chain holds no certificates');
  return chain;
}
