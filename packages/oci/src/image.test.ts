import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBundleMediaType } from './image.ts';

test('bundle referrers of every published version are read (actions/attest pushed v0.2)', () => {
  for (const t of [
    'application/vnd.dev.sigstore.bundle.v0.3+json',
    'application/vnd.dev.sigstore.bundle+json;version=0.3',
    'application/vnd.dev.sigstore.bundle+json;version=0.2',
    'application/vnd.dev.sigstore.bundle+json;version=0.1',
  ])
    assert.ok(isBundleMediaType(t), t);
  for (const t of [undefined, '', 'application/vnd.dev.sigstore.bundle+json;version=0.4', 'application/spdx+json', 'application/json'])
    assert.ok(!isBundleMediaType(t), String(t));
});
