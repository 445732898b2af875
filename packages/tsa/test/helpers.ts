// Test helpers for the TSA: an independent walk over a TimeStampResp, so tests can check each
// field the issuer writes without trusting the issuer's own encoder.
import { execFileSync } from 'node:child_process';
import { parseDer, readOid, readSmallInt, TAG, type DerNode } from '../../core/src/der.ts';
import { fromUtf8 } from '../../core/src/bytes.ts';

export interface DecodedTimestamp {
  status: number;
  contentType: string;
  signedDataVersion: number;
  digestAlgorithms: string[];
  eContentType: string;
  tstInfoDer: Uint8Array;
  tst: {
    version: number;
    policy: string;
    messageImprint: Uint8Array;
    imprintAlgorithm: string;
    hashedMessage: Uint8Array;
    serial: Uint8Array;
    genTime: string;
    accuracy?: DerNode;
    ordering?: boolean;
    nonce?: Uint8Array;
    tsa?: DerNode;
    extensions?: DerNode;
  };
  certificates: Uint8Array[];
  signerInfo: {
    version: number;
    sid: DerNode;
    digestAlgorithm: DerNode;
    /** The signed attributes re-tagged as SET OF, i.e. the bytes that were signed. */
    signedAttrs: Uint8Array;
    attributes: Map<string, DerNode>;
    signatureAlgorithm: DerNode;
    signature: Uint8Array;
  };
}

export function decodeTimestampResponse(der: Uint8Array): DecodedTimestamp {
  const resp = parseDer(der);
  const status = readSmallInt(resp.children[0]!.children[0]);
  const token = resp.children[1]!;
  const contentType = readOid(token.children[0]);
  const sd = token.children[1]!.children[0]!;
  const signedDataVersion = readSmallInt(sd.children[0]);
  const digestAlgorithms = sd.children[1]!.children.map((a) => readOid(a.children[0]));
  const encap = sd.children[2]!;
  const eContentType = readOid(encap.children[0]);
  const tstInfoDer = encap.children[1]!.children[0]!.value;
  const t = parseDer(tstInfoDer).children;
  let i = 5;
  const tst: DecodedTimestamp['tst'] = {
    version: readSmallInt(t[0]),
    policy: readOid(t[1]),
    messageImprint: t[2]!.raw,
    imprintAlgorithm: readOid(t[2]!.children[0]!.children[0]),
    hashedMessage: t[2]!.children[1]!.value,
    serial: t[3]!.value,
    genTime: fromUtf8(t[4]!.value),
  };
  if (t[i]?.tag === TAG.SEQUENCE) tst.accuracy = t[i++];
  if (t[i]?.tag === TAG.BOOLEAN) tst.ordering = t[i++]!.value[0] !== 0;
  if (t[i]?.tag === TAG.INTEGER) tst.nonce = t[i++]!.value;
  if (t[i]?.tag === 0xa0) tst.tsa = t[i++];
  if (t[i]?.tag === 0xa1) tst.extensions = t[i++];
  if (i !== t.length) throw new Error(`unexpected TSTInfo element at ${i}`);

  let certificates: Uint8Array[] = [];
  let next = 3;
  if (sd.children[next]?.tag === 0xa0) certificates = sd.children[next++]!.children.map((c) => c.raw);
  const si = sd.children[sd.children.length - 1]!;
  if (si.children.length !== 1) throw new Error('expected exactly one SignerInfo');
  const s = si.children[0]!;
  const signedAttrs = new Uint8Array(s.children[3]!.raw);
  signedAttrs[0] = 0x31;
  const attributes = new Map<string, DerNode>();
  for (const a of s.children[3]!.children) attributes.set(readOid(a.children[0]), a.children[1]!);
  return {
    status,
    contentType,
    signedDataVersion,
    digestAlgorithms,
    eContentType,
    tstInfoDer,
    tst,
    certificates,
    signerInfo: {
      version: readSmallInt(s.children[0]),
      sid: s.children[1]!,
      digestAlgorithm: s.children[2]!,
      signedAttrs,
      attributes,
      signatureAlgorithm: s.children[4]!,
      signature: s.children[5]!.value,
    },
  };
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
