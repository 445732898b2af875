// RFC 6962 / RFC 9162 Merkle tree hashing and proof verification (SHA-256).
import { createHash, hash } from 'node:crypto';
import { WaxsealError } from './errors.ts';
import { bytesEqual } from './bytes.ts';

const LEAF_PREFIX = Uint8Array.of(0);
const NODE_PREFIX = Uint8Array.of(1);

export function leafHash(entry: Uint8Array): Uint8Array {
  const d = createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

// Interior hashes are the hot path of appends and proofs: one-shot hashing of a reused
// 65-byte buffer (0x01 || left || right) is ~30% cheaper than a streaming Hash object.
const nodeInput = new Uint8Array(65);
nodeInput[0] = NODE_PREFIX[0]!;

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== 32 || right.length !== 32) {
    const d = createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 33);
  const d = hash('sha256', nodeInput, 'buffer');
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_ROOT = new Uint8Array(createHash('sha256').digest());

/** Largest power of two strictly less than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Root of a list of leaf hashes (recursive MTH). */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(rootFromLeafHashes(leaves.slice(0, k)), rootFromLeafHashes(leaves.slice(k)));
}

function checkIndex(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new WaxsealError('ERR_INVALID_INPUT', `${what} must be a non-negative integer`);
}

/**
 * Root hash implied by an inclusion proof (RFC 9162 2.1.3.2). Throws when the proof has the
 * wrong length for (index, size); the caller compares the result with a trusted root.
 */
export function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  checkIndex(index, 'leaf index');
  checkIndex(size, 'tree size');
  if (index >= size) throw new WaxsealError('ERR_INVALID_INPUT', `leaf index ${index} is beyond tree size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) throw new WaxsealError('ERR_INVALID_INPUT', 'inclusion proof hash is not 32 bytes');
    if (sn === 0) throw new WaxsealError('ERR_INVALID_INPUT', 'inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new WaxsealError('ERR_INVALID_INPUT', 'inclusion proof is too short');
  return r;
}

export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  try {
    return bytesEqual(rootFromInclusionProof(index, size, leaf, proof), root);
  } catch {
    return false;
  }
}

/** Verifies an RFC 9162 2.1.4.2 consistency proof between two tree heads. */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) return false;
  if (proof.some((p) => p.length !== 32)) return false;
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  let path = [...proof];
  // If size1 is a power of two, its root is the first node of the path.
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...path];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, root1) && bytesEqual(sr, root2);
}

/** Inclusion proof for leaf `index` over the full list of leaf hashes (RFC 9162 PATH). */
export function inclusionProof(index: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const k = splitPoint(leaves.length);
  if (index < k) return [...inclusionProof(index, leaves.slice(0, k)), rootFromLeafHashes(leaves.slice(k))];
  return [...inclusionProof(index - k, leaves.slice(k)), rootFromLeafHashes(leaves.slice(0, k))];
}

/** Consistency proof between the first `size1` leaves and all `leaves` (RFC 9162 PROOF). */
export function consistencyProof(size1: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  const subproof = (m: number, d: readonly Uint8Array[], complete: boolean): Uint8Array[] => {
    const n = d.length;
    if (m === n) return complete ? [] : [rootFromLeafHashes(d)];
    const k = splitPoint(n);
    if (m <= k) return [...subproof(m, d.slice(0, k), complete), rootFromLeafHashes(d.slice(k))];
    return [...subproof(m - k, d.slice(k), false), rootFromLeafHashes(d.slice(0, k))];
  };
  if (size1 === 0 || size1 === leaves.length) return [];
  return subproof(size1, leaves, true);
}
