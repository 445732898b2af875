// C2SP tlog-tiles paths and entry bundles have one encoding each: whatever parseTilePath and
// decodeEntryBundle accept, tilePath and encodeEntryBundle give back exactly; anything else is
// refused with a WaxsealError (never another exception).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostileBytes, hostileText, parseOrRefuse } from '@waxseal/testkit';
import { decodeEntryBundle, encodeEntryBundle, parseTilePath, tilePath, TILE_WIDTH, type TileCoord } from './tiles.ts';
import { toHex } from '../../core/src/bytes.ts';

const coord: fc.Arbitrary<TileCoord> = fc.record({
  level: fc.integer({ min: -1, max: 63 }),
  index: fc.oneof(fc.nat({ max: 2000 }), fc.nat({ max: Number.MAX_SAFE_INTEGER })),
  width: fc.oneof(fc.constant(TILE_WIDTH), fc.integer({ min: 1, max: TILE_WIDTH - 1 })),
});
/** tilePath without the leading "tile/": what parseTilePath reads. */
const pathOf = (c: TileCoord) => tilePath(c).slice('tile/'.length);

test('property: parseTilePath refuses with a WaxsealError or tilePath gives back its input', () => {
  const seeds = fc.sample(coord, { numRuns: 40, seed: 5 }).map(pathOf);
  fc.assert(
    fc.property(hostileText(seeds, ['x', '.p', '/', '00', '1', '256', 'entries']), (rest) => {
      const c = parseOrRefuse(() => parseTilePath(rest), JSON.stringify(rest));
      if (c) assert.equal(pathOf(c), rest);
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(coord, (c) => assert.deepEqual(parseTilePath(pathOf(c)), { ...c })),
    { numRuns: 500 },
  );
});

const bundle = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 });

test('property: decodeEntryBundle refuses with a WaxsealError or encodeEntryBundle gives back its input', () => {
  const seeds = [
    ...fc.sample(bundle, { numRuns: 20, seed: 9 }).map(encodeEntryBundle),
    encodeEntryBundle(Array.from({ length: 256 }, () => Uint8Array.of(1))),
  ];
  fc.assert(
    fc.property(hostileBytes(seeds, 600), (bytes) => {
      const entries = parseOrRefuse(() => decodeEntryBundle(bytes), toHex(bytes.subarray(0, 64)));
      if (entries) assert.equal(toHex(encodeEntryBundle(entries)), toHex(bytes));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(bundle, (entries) => assert.deepEqual(decodeEntryBundle(encodeEntryBundle(entries)), entries)),
    { numRuns: 300 },
  );
});
