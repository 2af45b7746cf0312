#!/usr/bin/env node
'use strict';
const path = require('node:path');
const entry = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
try {
  require.resolve(entry);
} catch {
  process.stderr.write('pricesense: the CLI is not built yet (no dist/cli/index.js). Run `npm run build` (npm ci does it via `prepare`).\n');
  process.exit(1);
}
require(entry).main(process.argv).catch((err) => {
  process.stderr.write(`pricesense: ${err && err.message ? err.message : String(err)}\n`);
  // 70: an internal error (core/error-kinds.ts); main() itself maps every error it sees.
  process.exit(typeof err?.exitCode === 'number' ? err.exitCode : 70);
});
