// Embedded SCT verification (RFC 6962 3.2 / 3.3): parse the SignedCertificateTimestampList of
// a certificate, rebuild the precertificate TBS (the certificate's TBS without the SCT list
// extension) and check each SCT's digitally-signed struct against the CT log's key.
import {
  ByteReader,
  WaxsealError,
  concat,
  toHex,
  parseDer,
  expectTag,
  readOctetString,
  readOid,
  child,
  tlv,
  TAG,
  OID,
  sha256,
  verifySignature,
  getExtension,
  type DerNode,
  type HashName,
  type PublicKeyInfo,
  type Certificate,
} from '@waxseal/core';
import { MAX_EMBEDDED_SCTS, type TransparencyLogInstance } from '@waxseal/bundle';
import { inRange } from './chain.ts';

export interface Sct {
  version: number;
  logId: Uint8Array;
  /** Milliseconds since the epoch. */
  timestamp: number;
  extensions: Uint8Array;
  hashAlgorithm: number;
  signatureAlgorithm: number;
  signature: Uint8Array;
}

const MALFORMED = 'ERR_VERIFY_SCT';

/** The SCTs embedded in a certificate (empty when it has no SCT list extension). Malformed lists throw ERR_VERIFY_SCT. */
export function embeddedScts(cert: Certificate): Sct[] {
  const ext = getExtension(cert, OID.ctSctList);
  if (!ext) return [];
  // extnValue is an OCTET STRING that wraps the TLS-encoded SignedCertificateTimestampList.
  let tls: Uint8Array;
  try {
    tls = readOctetString(parseDer(ext.value), 'SCT list');
  } catch (e) {
    throw new WaxsealError(MALFORMED, `SCT list: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const list = new ByteReader(tls, MALFORMED, 'SCT list');
  const body = new ByteReader(list.vector(2), MALFORMED, 'SCT list');
  list.expectEnd('trailing data after the SCT list');
  const out: Sct[] = [];
  while (!body.done) {
    if (out.length >= MAX_EMBEDDED_SCTS) body.fail(`more than ${MAX_EMBEDDED_SCTS} SCTs`);
    const r = new ByteReader(body.vector(2), MALFORMED, `SCT ${out.length}`);
    const version = r.u8();
    const logId = r.bytes(32);
    const timestamp = r.u64();
    const extensions = r.vector(2);
    const hashAlgorithm = r.u8();
    const signatureAlgorithm = r.u8();
    const signature = r.vector(2);
    r.expectEnd();
    out.push({ version, logId, timestamp, extensions, hashAlgorithm, signatureAlgorithm, signature });
  }
  return out;
}

/** The TBSCertificate with the SCT list extension removed: the precertificate TBS the log signed. */
export function precertTbs(cert: Certificate): Uint8Array {
  const tbs = parseDer(cert.tbs);
  const parts: Uint8Array[] = [];
  for (const c of tbs.children) {
    if (c.tag !== 0xa3) {
      parts.push(c.raw);
      continue;
    }
    const list = expectTag(child(c, 0, 'extensions'), TAG.SEQUENCE, 'Extensions');
    const kept = list.children.filter((e: DerNode) => readOid(child(e, 0, 'extnID')) !== OID.ctSctList).map((e) => e.raw);
    if (kept.length > 0) parts.push(tlv(0xa3, tlv(TAG.SEQUENCE, concat(...kept))));
  }
  return tlv(TAG.SEQUENCE, concat(...parts));
}

function uintBytes(v: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

/** RFC 6962 digitally-signed struct for a precert_entry SCT. */
export function sctSignedData(sct: Sct, issuerKeyHash: Uint8Array, tbs: Uint8Array): Uint8Array {
  return concat(
    Uint8Array.of(sct.version, 0), // version, signature_type = certificate_timestamp
    uintBytes(sct.timestamp, 8),
    Uint8Array.of(0, 1), // entry_type = precert_entry
    issuerKeyHash,
    uintBytes(tbs.length, 3),
    tbs,
    uintBytes(sct.extensions.length, 2),
    sct.extensions,
  );
}

const TLS_HASH: Record<number, HashName> = { 4: 'sha256', 5: 'sha384', 6: 'sha512' };

export interface CtLog {
  instance: TransparencyLogInstance;
  key: PublicKeyInfo | undefined;
}

export interface SctResult {
  /** Base URLs of the distinct CT logs with a verified SCT. */
  verifiedLogs: string[];
  /** Why other SCTs did not count. */
  problems: string[];
}

/** Verifies the embedded SCTs of `leaf` (issued by `issuer`) against the trusted CT logs. */
export function verifyEmbeddedScts(leaf: Certificate, issuer: Certificate, ctlogs: ReadonlyMap<string, CtLog>): SctResult {
  const problems: string[] = [];
  const verified = new Set<string>();
  let scts: Sct[];
  try {
    scts = embeddedScts(leaf);
  } catch (e) {
    return { verifiedLogs: [], problems: [`malformed SCT list: ${e instanceof Error ? e.message : String(e)}`] };
  }
  if (scts.length === 0) return { verifiedLogs: [], problems: ['the certificate carries no embedded SCTs'] };
  const issuerKeyHash = sha256(issuer.spki);
  let tbs: Uint8Array | undefined;
  for (const sct of scts) {
    const id = toHex(sct.logId);
    const log = ctlogs.get(id);
    if (!log) {
      problems.push(`SCT from unknown CT log ${id.slice(0, 16)}`);
      continue;
    }
    if (verified.has(log.instance.baseUrl)) continue;
    if (sct.version !== 0) {
      problems.push(`SCT version ${sct.version} is not supported`);
      continue;
    }
    if (!log.key) {
      problems.push(`CT log ${log.instance.baseUrl} has an unusable key`);
      continue;
    }
    const ts = new Date(sct.timestamp);
    if (log.instance.publicKey.validFor && !inRange(log.instance.publicKey.validFor, ts)) {
      problems.push(`SCT time ${ts.toISOString()} is outside CT log ${log.instance.baseUrl}'s validity`);
      continue;
    }
    const hash = TLS_HASH[sct.hashAlgorithm];
    if (!hash) {
      problems.push(`SCT hash algorithm ${sct.hashAlgorithm} is not supported`);
      continue;
    }
    tbs ??= precertTbs(leaf);
    if (!verifySignature(log.key, sctSignedData(sct, issuerKeyHash, tbs), sct.signature, { hash })) {
      problems.push(`SCT signature from CT log ${log.instance.baseUrl} does not verify`);
      continue;
    }
    verified.add(log.instance.baseUrl);
  }
  return { verifiedLogs: [...verified], problems };
}
