// Builds footfall.js, the file the gateway serves, from footfall.src.js and prints its
// size. `node build.js --check` builds in memory and fails when footfall.js is not what
// the source builds to, or is over budget. esbuild is pinned to one exact version in
// package.json and package-lock.json, so the same source always builds to the same bytes.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const SRC = path.join(__dirname, 'footfall.src.js');
const OUT = path.join(__dirname, 'footfall.js');
/** Most bytes footfall.js may take minified and gzipped (issue 7). */
const BUDGET_GZIP = 3072;

function build() {
  const esbuild = require('esbuild');
  const { code } = esbuild.transformSync(fs.readFileSync(SRC, 'utf8'), {
    minify: true,
    target: 'es5', // the source is ES5: minifying must not add newer syntax
    legalComments: 'none',
    charset: 'ascii',
  });
  return code;
}

function gzipSize(code) {
  return zlib.gzipSync(code, { level: 9 }).length;
}

function main(argv) {
  const code = build();
  const size = gzipSize(code);
  const report = `footfall.js: ${Buffer.byteLength(code)} bytes minified, ${size} gzipped (budget ${BUDGET_GZIP})`;
  if (argv.includes('--check')) {
    const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (current !== code) {
      console.error('footfall.js is not built from the current footfall.src.js: run `npm run build`');
      return 1;
    }
  } else {
    fs.writeFileSync(OUT, code);
  }
  console.log(report);
  if (size > BUDGET_GZIP) {
    console.error(`over budget by ${size - BUDGET_GZIP} bytes`);
    return 1;
  }
  return 0;
}

module.exports = { build, gzipSize, BUDGET_GZIP, SRC, OUT };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
