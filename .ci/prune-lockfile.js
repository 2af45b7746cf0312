#!/usr/bin/env node
// This workplace's npm registry serves only the linux-x64 builds of packages with
// per-platform optional dependencies (DuckDB's bindings, unrs-resolver), so `npm install`
// here cannot write lock entries for the other platforms, and `npm ci` then refuses the
// lock ("Missing: … from lock file"). This drops optional-dependency edges that have no
// entry in the lock, which is exactly what an install on this platform uses. Run it after
// `npm install` changes package-lock.json; `npm ci` on linux-x64 installs the same tree.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const present = new Set(Object.keys(lock.packages).map((k) => k.split('node_modules/').pop()));
let removed = 0;
for (const entry of Object.values(lock.packages)) {
  const optional = entry.optionalDependencies;
  if (!optional) continue;
  for (const name of Object.keys(optional)) {
    if (!present.has(name)) {
      delete optional[name];
      removed += 1;
    }
  }
  if (Object.keys(optional).length === 0) delete entry.optionalDependencies;
}
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`prune-lockfile: removed ${removed} optional dependency edge(s) with no lock entry\n`);
