// The Rekor TransparencyLogEntry (protobuf-specs dev.sigstore.rekor.v1) in protobuf's binary
// wire format, as gitsign's offline mode embeds it in the CMS (unsigned attribute
// 1.3.6.1.4.1.57264.3.1). Only the fields of that message are read; the bytes are
// attacker-controlled, so every length is bounded by its container and unknown fields are skipped
// (as protobuf readers do) but wrong wire types are refused.
import { WaxsealError, fromUtf8, utf8, concat } from '@waxseal/core';
import type { TransparencyLogEntry } from '@waxseal/bundle';

function fail(message: string): never {
  throw new WaxsealError('ERR_VERIFY_TLOG', `embedded log entry: ${message}`, { check: 'tlog.body' });
}

interface Field {
  num: number;
  wire: number;
  /** varint value (wire 0) */
  int?: number;
  /** bytes (wire 2) */
  bytes?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) fail('truncated varint');
    const b = buf[pos++]!;
    value += (b & 0x7f) * mul;
    if (!(b & 0x80)) {
      if (!Number.isSafeInteger(value)) fail('integer too large');
      return { value, next: pos };
    }
    mul *= 128;
  }
  fail('varint longer than 10 bytes');
}

function readFields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const key = readVarint(buf, pos);
    pos = key.next;
    const num = Math.floor(key.value / 8);
    const wire = key.value % 8;
    if (num === 0) fail('field number 0');
    if (wire === 0) {
      const v = readVarint(buf, pos);
      out.push({ num, wire, int: v.value });
      pos = v.next;
    } else if (wire === 2) {
      const len = readVarint(buf, pos);
      const end = len.next + len.value;
      if (end > buf.length) fail('length runs past the end of its message');
      out.push({ num, wire, bytes: buf.subarray(len.next, end) });
      pos = end;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > buf.length) fail('truncated fixed-width field');
    } else fail(`unsupported wire type ${wire}`);
  }
  return out;
}

function pick(fields: Field[], num: number, wire: number, what: string): Field | undefined {
  let last: Field | undefined;
  for (const f of fields) {
    if (f.num !== num) continue;
    if (f.wire !== wire) fail(`${what} has the wrong wire type`);
    last = f; // protobuf: the last occurrence of a scalar wins
  }
  return last;
}

const int = (fs: Field[], n: number, what: string) => pick(fs, n, 0, what)?.int ?? 0;
const bytes = (fs: Field[], n: number, what: string) => pick(fs, n, 2, what)?.bytes;
const text = (fs: Field[], n: number, what: string) => {
  const b = bytes(fs, n, what);
  return b ? fromUtf8(b, what) : '';
};

/** Decodes a binary TransparencyLogEntry. A cleared canonicalizedBody comes back empty. */
export function decodeTransparencyLogEntry(buf: Uint8Array): TransparencyLogEntry {
  const fs = readFields(buf);
  const logId = bytes(fs, 2, 'logId');
  const kv = bytes(fs, 3, 'kindVersion');
  const kvf = kv ? readFields(kv) : [];
  const entry: TransparencyLogEntry = {
    logIndex: int(fs, 1, 'logIndex'),
    logId: logId ? (bytes(readFields(logId), 1, 'logId.keyId') ?? new Uint8Array()) : new Uint8Array(),
    kindVersion: { kind: text(kvf, 1, 'kind'), version: text(kvf, 2, 'version') },
    integratedTime: int(fs, 4, 'integratedTime'),
    canonicalizedBody: bytes(fs, 7, 'canonicalizedBody') ?? new Uint8Array(),
  };
  const promise = bytes(fs, 5, 'inclusionPromise');
  if (promise) entry.inclusionPromise = { signedEntryTimestamp: bytes(readFields(promise), 1, 'signedEntryTimestamp') ?? new Uint8Array() };
  const proof = bytes(fs, 6, 'inclusionProof');
  if (proof) {
    const pf = readFields(proof);
    const cp = bytes(pf, 5, 'checkpoint');
    entry.inclusionProof = {
      logIndex: int(pf, 1, 'inclusionProof.logIndex'),
      rootHash: bytes(pf, 2, 'rootHash') ?? new Uint8Array(),
      treeSize: int(pf, 3, 'treeSize'),
      hashes: pf.filter((f) => f.num === 4).map((f) => (f.wire === 2 ? f.bytes! : fail('hashes has the wrong wire type'))),
      checkpoint: cp ? text(readFields(cp), 1, 'checkpoint.envelope') : '',
    };
  }
  return entry;
}

// ---------------------------------------------------------------- writer

function varint(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`varint out of range: ${v}`);
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

const intField = (n: number, v: number) => (v === 0 ? new Uint8Array() : concat(varint(n * 8), varint(v)));
const bytesField = (n: number, v: Uint8Array) => concat(varint(n * 8 + 2), varint(v.length), v);
const optBytes = (n: number, v: Uint8Array) => (v.length === 0 ? new Uint8Array() : bytesField(n, v));

/** Encodes a TransparencyLogEntry (proto3: zero values omitted). */
export function encodeTransparencyLogEntry(e: TransparencyLogEntry): Uint8Array {
  const parts = [
    intField(1, e.logIndex),
    bytesField(2, optBytes(1, e.logId)),
    bytesField(3, concat(optBytes(1, utf8(e.kindVersion.kind)), optBytes(2, utf8(e.kindVersion.version)))),
    intField(4, e.integratedTime),
  ];
  if (e.inclusionPromise) parts.push(bytesField(5, optBytes(1, e.inclusionPromise.signedEntryTimestamp)));
  if (e.inclusionProof) {
    const p = e.inclusionProof;
    parts.push(
      bytesField(
        6,
        concat(
          intField(1, p.logIndex),
          optBytes(2, p.rootHash),
          intField(3, p.treeSize),
          ...p.hashes.map((h) => bytesField(4, h)),
          bytesField(5, optBytes(1, utf8(p.checkpoint))),
        ),
      ),
    );
  }
  parts.push(optBytes(7, e.canonicalizedBody));
  return concat(...parts);
}
