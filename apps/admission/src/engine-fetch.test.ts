// The referrers-API memo: what it learns from a lookup, for how long, and its bound. (The reads
// themselves are pinned end to end against docker-registry in test/engine.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReferrersApiMemo } from './engine-fetch.ts';

const repo = (repository: string, registry = 'registry.example') => ({ registry, repository });

test('a 404 then a tag-schema index marks the repository; an API answer or expiry clears it', () => {
  let now = 1_000;
  const memo = new ReferrersApiMemo({ ttlMs: 60_000, now: () => now });
  assert.equal(memo.tagSchemaOnly(repo('a')), false);
  memo.learn(repo('a'), 'tag');
  assert.equal(memo.tagSchemaOnly(repo('a')), true);
  // Per repository and registry.
  assert.equal(memo.tagSchemaOnly(repo('b')), false);
  assert.equal(memo.tagSchemaOnly(repo('a', 'other.example')), false);
  now += 59_999;
  assert.equal(memo.tagSchemaOnly(repo('a')), true);
  now += 1;
  assert.equal(memo.tagSchemaOnly(repo('a')), false, 'asked again once the TTL passed');
  assert.equal(memo.size, 0);
  memo.learn(repo('a'), 'tag');
  memo.learn(repo('a'), 'api');
  assert.equal(memo.tagSchemaOnly(repo('a')), false, 'the registry answered the API');
});

test("'none' (404 and no tag index) proves nothing: the repository itself may be missing", () => {
  const memo = new ReferrersApiMemo();
  memo.learn(repo('a'), 'none');
  assert.equal(memo.tagSchemaOnly(repo('a')), false);
  memo.learn(repo('a'), 'tag');
  memo.learn(repo('a'), 'none');
  assert.equal(memo.tagSchemaOnly(repo('a')), false);
});

test('bounded: the oldest entries go first', () => {
  const memo = new ReferrersApiMemo({ max: 3 });
  for (const r of ['a', 'b', 'c', 'd']) memo.learn(repo(r), 'tag');
  assert.equal(memo.size, 3);
  assert.equal(memo.tagSchemaOnly(repo('a')), false);
  assert.equal(memo.tagSchemaOnly(repo('d')), true);
});
