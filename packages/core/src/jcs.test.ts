import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { canonicalize } from './jcs.ts';

test('JCS sorts keys by UTF-16 code units and formats numbers as ES6', () => {
  // RFC 8785 section 3.2.3 sorting example (subset) and number forms.
  assert.equal(
    canonicalize({ '\u20ac': 'Euro', '\r': 'CR', '1': 'One', '\ud83d\ude00': 'smile', '\u00f6': 'o' }),
    '{"\\r":"CR","1":"One","ö":"o","€":"Euro","😀":"smile"}',
  );
  assert.equal(canonicalize({ b: [1e21, 0.000001, -0, 1.5], a: null }), '{"a":null,"b":[1e+21,0.000001,0,1.5]}');
  assert.equal(canonicalize({ z: { y: 'x', a: true } }), '{"z":{"a":true,"y":"x"}}');
  throwsWithCode(() => canonicalize({ n: NaN }), 'ERR_INVALID_INPUT', /non-finite/);
  throwsWithCode(() => canonicalize({ n: Infinity }), 'ERR_INVALID_INPUT', /non-finite/);
  throwsWithCode(() => canonicalize({ f: () => 1 }), 'ERR_INVALID_INPUT', /function/);
  throwsWithCode(() => canonicalize([1n]), 'ERR_INVALID_INPUT', /bigint/);
});
