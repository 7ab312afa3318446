// footfall.js, the file the gateway serves, is committed: it must be exactly what the
// source builds to, and within the size budget of issue 7.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { build, gzipSize, BUDGET_GZIP, OUT } = require('../build');

test('footfall.js is built from the current footfall.src.js (else: npm run build)', () => {
  let built;
  try {
    built = build();
  } catch (e) {
    assert.fail(`esbuild is not installed: run \`npm ci\` in web/tracker (${e.message})`);
  }
  assert.ok(fs.readFileSync(OUT, 'utf8') === built, 'footfall.js is stale: run `npm run build` in web/tracker');
});

test(`footfall.js is at most ${BUDGET_GZIP} bytes minified and gzipped`, () => {
  const size = gzipSize(fs.readFileSync(OUT, 'utf8'));
  assert.ok(size <= BUDGET_GZIP, `${size} bytes gzipped`);
});
