// Transparency-log upload for the signing client. Rekor v1: hashedrekord 0.0.1 for message
// signatures and dsse 0.0.1 for envelopes, converting the REST LogEntry into the bundle's
// TransparencyLogEntry. Rekor v2: hashedrekord 0.0.2 for both (DSSE as a hashedrekord over
// SHA-256(PAE), as the current Rekor v2 spec requires); the response already is a
// TransparencyLogEntry.
import { WaxsealError, toBase64, toHex, fromHex, fromBase64, utf8, encodePem, sha256, pae } from '@waxseal/core';
import { postBytes } from './http-client.ts';
import type { TlogUploader, TlogUploadInput } from './sign.ts';

interface V1LogEntry {
  body: string;
  integratedTime: number;
  logID: string;
  logIndex: number;
  verification?: {
    signedEntryTimestamp?: string;
    inclusionProof?: { logIndex: number; treeSize: number; rootHash: string; hashes: string[]; checkpoint: string };
  };
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
    spec: { proposedContent: { envelope: JSON.stringify(input.content.envelope), verifiers: [toBase64(utf8(certPem))] } },
  };
}

/** Rekor v1 REST LogEntry -> protobuf-JSON TransparencyLogEntry. */
export function v1EntryToTle(entry: V1LogEntry): Record<string, unknown> {
  const body = JSON.parse(Buffer.from(fromBase64(entry.body)).toString('utf8')) as { kind: string; apiVersion: string };
  const proof = entry.verification?.inclusionProof;
  return {
    logIndex: String(entry.logIndex),
    logId: { keyId: toBase64(fromHex(entry.logID)) },
    kindVersion: { kind: body.kind, version: body.apiVersion },
    integratedTime: String(entry.integratedTime),
    ...(entry.verification?.signedEntryTimestamp
      ? { inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp } }
      : {}),
    ...(proof
      ? {
          inclusionProof: {
            logIndex: String(proof.logIndex),
            rootHash: toBase64(fromHex(proof.rootHash)),
            treeSize: String(proof.treeSize),
            hashes: proof.hashes.map((h) => toBase64(fromHex(h))),
            checkpoint: { envelope: proof.checkpoint },
          },
        }
      : {}),
    canonicalizedBody: entry.body,
  };
}

function v2Request(input: TlogUploadInput): unknown {
  const digest =
    input.content.kind === 'messageSignature'
      ? input.content.digest
      : sha256(pae(input.content.envelope.payloadType, fromBase64(input.content.envelope.payload)));
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

/** Drops the EmitUnpopulated noise (nulls, "0" integrated time) of a Rekor v2 response. */
function tidyV2(tle: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tle)) {
    if (v === null || v === undefined) continue;
    if (k === 'integratedTime' && (v === '0' || v === 0)) continue;
    out[k] = v;
  }
  return out;
}

export function makeTlogUploader(log: { url: string; majorApiVersion: number }, f?: typeof fetch): TlogUploader {
  const base = log.url.replace(/\/$/, '');
  return async (input) => {
    const v2 = log.majorApiVersion === 2;
    const res = await postBytes(`${base}/api/v${v2 ? 2 : 1}/log/entries`, JSON.stringify(v2 ? v2Request(input) : v1Proposal(input)), {
      what: 'the transparency log',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      timeoutMs: 30_000,
      ...(f ? { fetch: f } : {}),
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(res.body).toString('utf8'));
    } catch {
      throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log answered with something that is not JSON');
    }
    if (v2) return tidyV2(parsed as Record<string, unknown>);
    const entries = Object.values(parsed as Record<string, V1LogEntry>);
    if (entries.length !== 1) throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log response does not hold exactly one entry');
    return v1EntryToTle(entries[0]!);
  };
}
