// Client for an RFC 3161 timestamp authority (sigstore timestamp-authority API): sends a DER
// TimeStampReq over SHA-256(signature) with a nonce and certReq, returns the DER TimeStampResp.
import { randomBytes } from 'node:crypto';
import {
  WaxsealError,
  seq,
  integer,
  oid,
  nullValue,
  octetString,
  bool,
  parseDer,
  readSmallInt,
  readBigInt,
  child,
  TAG,
  isContext,
  sha256,
  OID,
} from '@waxseal/core';
import { postBytes } from './http-client.ts';

export function timeStampRequest(digest: Uint8Array, nonce: Uint8Array): Uint8Array {
  return seq(integer(1), seq(seq(oid(OID.sha256), nullValue()), octetString(digest)), integer(nonce), bool(true));
}

/** Checks PKIStatus granted and that the token echoes our nonce; full verification happens later. */
function checkResponse(der: Uint8Array, nonce: bigint): void {
  let resp;
  try {
    resp = parseDer(der);
  } catch (e) {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the TSA answered with malformed DER', { cause: e });
  }
  const status = readSmallInt(child(child(resp, 0, 'PKIStatusInfo'), 0, 'status'));
  if (status !== 0 && status !== 1) throw new WaxsealError('ERR_INVALID_INPUT', `the TSA refused the request (PKIStatus ${status})`);
  // token -> content [0] -> SignedData -> encapContentInfo -> eContent [0] -> OCTET STRING TSTInfo
  const signedData = child(child(child(resp, 1, 'timeStampToken'), 1, 'content'), 0, 'SignedData');
  const encap = signedData.children.find((c) => c.tag === TAG.SEQUENCE && c.children[1] && isContext(c.children[1], 0));
  const tst = parseDer(child(child(encap!, 1, 'eContent'), 0, 'TSTInfo').value);
  const echoed = tst.children.find((c, i) => i > 4 && c.tag === TAG.INTEGER);
  if (!echoed || readBigInt(echoed) !== nonce) throw new WaxsealError('ERR_INVALID_INPUT', 'the TSA response does not echo our nonce');
}

export async function requestTimestamp(o: { tsaUrl: string; signature: Uint8Array; fetch?: typeof fetch }): Promise<Uint8Array> {
  const nonceBytes = randomBytes(8);
  nonceBytes[0]! &= 0x7f;
  const nonce = BigInt(`0x${nonceBytes.toString('hex')}`);
  const res = await postBytes(o.tsaUrl, timeStampRequest(sha256(o.signature), nonceBytes), {
    what: 'the timestamp authority',
    headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
  checkResponse(res.body, nonce);
  return res.body;
}
