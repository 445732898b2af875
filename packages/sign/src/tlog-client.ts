// Transparency-log upload for the signing client. Rekor v1: hashedrekord 0.0.1 for message
// signatures and dsse 0.0.1 for envelopes, converting the REST LogEntry into the bundle's
// TransparencyLogEntry. Rekor v2: hashedrekord 0.0.2 for both (DSSE as a hashedrekord over
// SHA-256(PAE), as the current Rekor v2 spec requires); the response already is a
// TransparencyLogEntry in protobuf JSON. Either answer goes through the bundle codec's parser:
// what a log returns is checked like any other input.
import { WaxsealError, toBase64, toHex, fromHex, fromBase64, fromUtf8, utf8, encodePem, sha256, pae } from '@waxseal/core';
import { parseTransparencyLogEntry, type DsseEnvelope, type TransparencyLogEntry, type Where } from '@waxseal/bundle';
import { postBytes } from './http-client.ts';
import type { TlogUploader, TlogUploadInput } from './sign.ts';

/** Rekor v1 REST LogEntry (the value under the entry's UUID). */
export interface V1LogEntry {
  body: string;
  integratedTime: number;
  logID: string;
  logIndex: number;
  verification?: {
    signedEntryTimestamp?: string;
    inclusionProof?: { logIndex: number; treeSize: number; rootHash: string; hashes: string[]; checkpoint: string };
  };
}

const LOG_RESPONSE: Where = { code: 'ERR_INVALID_INPUT', path: 'transparency log entry' };

/** The envelope as DSSE JSON, keyid always present (the form Rekor v1 dsse entries are proposed in). */
function envelopeJson(e: DsseEnvelope): string {
  return JSON.stringify({
    payload: toBase64(e.payload),
    payloadType: e.payloadType,
    signatures: e.signatures.map((s) => ({ sig: toBase64(s.sig), keyid: s.keyid })),
  });
}

function v1Proposal(input: TlogUploadInput): unknown {
  const certPem = encodePem('CERTIFICATE', input.certificate.der);
  if (input.content.kind === 'messageSignature') {
    return {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        signature: { content: toBase64(input.content.signature), publicKey: { content: toBase64(utf8(certPem)) } },
        data: { hash: { algorithm: 'sha256', value: toHex(input.content.digest) } },
      },
    };
  }
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: { proposedContent: { envelope: envelopeJson(input.content.envelope), verifiers: [toBase64(utf8(certPem))] } },
  };
}

/** Rekor v1 REST LogEntry -> the bundle's TransparencyLogEntry (hex IDs and hashes become bytes). */
export function v1EntryToTle(entry: V1LogEntry): TransparencyLogEntry {
  let json: Record<string, unknown>;
  try {
    const body = JSON.parse(fromUtf8(fromBase64(entry.body))) as { kind?: unknown; apiVersion?: unknown };
    const proof = entry.verification?.inclusionProof;
    json = {
      logIndex: entry.logIndex,
      logId: { keyId: toBase64(fromHex(entry.logID)) },
      kindVersion: { kind: body.kind, version: body.apiVersion },
      integratedTime: entry.integratedTime,
      ...(entry.verification?.signedEntryTimestamp
        ? { inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp } }
        : {}),
      ...(proof
        ? {
            inclusionProof: {
              logIndex: proof.logIndex,
              rootHash: toBase64(fromHex(proof.rootHash)),
              treeSize: proof.treeSize,
              hashes: proof.hashes.map((h) => toBase64(fromHex(h))),
              checkpoint: { envelope: proof.checkpoint },
            },
          }
        : {}),
      canonicalizedBody: entry.body,
    };
  } catch (e) {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log answered with a malformed Rekor v1 log entry', { cause: e });
  }
  return parseTransparencyLogEntry(json, LOG_RESPONSE);
}

function v2Request(input: TlogUploadInput): unknown {
  const digest =
    input.content.kind === 'messageSignature'
      ? input.content.digest
      : sha256(pae(input.content.envelope.payloadType, input.content.envelope.payload));
  return {
    hashedRekordRequestV002: {
      digest: toBase64(digest),
      signature: {
        content: toBase64(input.content.signature),
        verifier: { x509Certificate: { rawBytes: toBase64(input.certificate.der) }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' },
      },
    },
  };
}

export function makeTlogUploader(log: { url: string; majorApiVersion: number }, f?: typeof fetch): TlogUploader {
  if (log.majorApiVersion !== 1 && log.majorApiVersion !== 2) {
    throw new WaxsealError('ERR_CONFIG', `transparency log API version ${log.majorApiVersion} is not supported (1 or 2)`);
  }
  const base = log.url.replace(/\/$/, '');
  const v2 = log.majorApiVersion === 2;
  return async (input) => {
    const res = await postBytes(`${base}/api/v${v2 ? 2 : 1}/log/entries`, JSON.stringify(v2 ? v2Request(input) : v1Proposal(input)), {
      what: 'the transparency log',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      timeoutMs: 30_000,
      ...(f ? { fetch: f } : {}),
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(fromUtf8(res.body));
    } catch {
      throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log answered with something that is not JSON');
    }
    // Rekor v2 answers with a TransparencyLogEntry (nulls and a "0" integratedTime read as absent).
    if (v2) return parseTransparencyLogEntry(parsed, LOG_RESPONSE);
    const entries = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.values(parsed) : [];
    if (entries.length !== 1) throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log response does not hold exactly one entry');
    return v1EntryToTle(entries[0] as V1LogEntry);
  };
}
