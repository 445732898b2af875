// What a monitor wants to know about a logged entry: its kind, the artifact digests it names and
// the signer identities (certificate SANs, PGP e-mails) it carries. Works on canonical bodies of
// every type this log writes; never throws (unknown shapes describe as empty).
import { fromBase64, toHex, decodePemAll, parseCertificate, subjectAltNames, hashFromEnum, parseJsonBounded } from '@waxseal/core';
import { parseKeyRing } from '../pki/pgp.ts';

export interface EntryDescription {
  kind: string;
  apiVersion: string;
  /** "<alg>:<hex>" (lower case). */
  digests: string[];
  /** Certificate SAN values and PGP e-mails. */
  identities: string[];
}

type J = Record<string, unknown> | undefined;
const o = (v: unknown): J => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function sansOfDer(der: Uint8Array, out: string[]): void {
  try {
    for (const s of subjectAltNames(parseCertificate(der))) out.push(s.value);
  } catch {
    // not a certificate
  }
}

function sansOfPemB64(b64: unknown, out: string[]): void {
  if (typeof b64 !== 'string') return;
  try {
    const pem = Buffer.from(fromBase64(b64)).toString('utf8');
    const first = decodePemAll(pem).find((b) => b.label === 'CERTIFICATE');
    if (first) sansOfDer(first.der, out);
  } catch {
    // ignore
  }
}

function v2Verifier(v: unknown, out: string[]): void {
  const raw = o(o(o(v)?.x509Certificate))?.rawBytes;
  if (typeof raw === 'string') {
    try {
      sansOfDer(fromBase64(raw), out);
    } catch {
      // ignore
    }
  }
}

function v2Digest(h: unknown, out: string[]): void {
  const x = o(h);
  if (typeof x?.algorithm !== 'string' || typeof x.digest !== 'string') return;
  try {
    out.push(`${hashFromEnum(x.algorithm)}:${toHex(fromBase64(x.digest))}`);
  } catch {
    // ignore
  }
}

export function describeEntry(body: Uint8Array): EntryDescription {
  const d: EntryDescription = { kind: '', apiVersion: '', digests: [], identities: [] };
  let e: J;
  try {
    e = o(parseJsonBounded(body, { maxBytes: body.length }));
  } catch {
    return d;
  }
  d.kind = typeof e?.kind === 'string' ? e.kind : '';
  d.apiVersion = typeof e?.apiVersion === 'string' ? e.apiVersion : '';
  const spec = o(e?.spec);
  const pushHash = (h: unknown) => {
    const x = o(h);
    if (typeof x?.algorithm === 'string' && typeof x.value === 'string') d.digests.push(`${x.algorithm}:${x.value}`.toLowerCase());
  };
  switch (`${d.kind}/${d.apiVersion}`) {
    case 'hashedrekord/0.0.1':
      pushHash(o(spec?.data)?.hash);
      sansOfPemB64(o(o(spec?.signature)?.publicKey)?.content, d.identities);
      break;
    case 'hashedrekord/0.0.2': {
      const h = o(spec?.hashedRekordV002);
      v2Digest(h?.data, d.digests);
      v2Verifier(o(h?.signature)?.verifier, d.identities);
      break;
    }
    case 'dsse/0.0.1':
      pushHash(spec?.payloadHash);
      for (const s of arr(spec?.signatures)) sansOfPemB64(o(s)?.verifier, d.identities);
      break;
    case 'dsse/0.0.2': {
      const x = o(spec?.dsseV002);
      v2Digest(x?.payloadHash, d.digests);
      for (const s of arr(x?.signatures)) v2Verifier(o(s)?.verifier, d.identities);
      break;
    }
    case 'intoto/0.0.2': {
      const c = o(spec?.content);
      pushHash(c?.payloadHash);
      for (const s of arr(o(c?.envelope)?.signatures)) sansOfPemB64(o(s)?.publicKey, d.identities);
      break;
    }
    case 'rekord/0.0.1': {
      pushHash(o(spec?.data)?.hash);
      const sig = o(spec?.signature);
      const key = o(sig?.publicKey)?.content;
      if (sig?.format === 'x509') sansOfPemB64(key, d.identities);
      if (sig?.format === 'pgp' && typeof key === 'string') {
        try {
          d.identities.push(...parseKeyRing(fromBase64(key)).emails);
        } catch {
          // ignore
        }
      }
      break;
    }
    default:
      break;
  }
  return d;
}
