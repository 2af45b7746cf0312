/**
 * `npm run bench:raw-lines`: the in-process cost of a raw-line request's feature
 * computation against scoring the same basket, the figure bench:api prints as its
 * "12-line basket, in process" row (same forest size, same baskets), with
 * its parts: typing the lines (the ETL's field rules), aggregating them, and the
 * model's request check around both. Baskets of 3, 12 and 35 lines; the target is the
 * 12-line row (aggregation ≤ scoring, issue 15).
 *
 *   npm run bench:raw-lines                              # trains 100 trees, depth 16 on 100k rows (~1 min)
 *   BENCH_FOREST=/tmp/forest.json npm run bench:raw-lines  # reuses (or, if absent, writes) that forest
 */
import { existsSync } from 'node:fs';
import { typeRawLines, featuresOfTypedLines } from '../etl/basket-features';
import { FEATURE_DEFINITIONS_VERSION } from '../etl/feature-definitions';
import { RequestValidator } from '../api/validation';
import { readForestFile, writeForestFile } from '../model/forest-file';
import { trainForest } from '../model/trainer';
import { CompiledForest } from '../model/walker';
import { sampleLines, syntheticGold } from './api';
import { interleaved } from './interleaved';
import type { ForestFileV1 } from '../model/format';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const ROUNDS = 9;

async function forestFor(): Promise<ForestFileV1> {
  const cached = process.env.BENCH_FOREST;
  if (cached && existsSync(cached)) return readForestFile(cached);
  process.stderr.write(`training 100 trees, depth 16 on ${ROWS.toLocaleString('en-US')} synthetic gold rows...\n`);
  const forest = await trainForest(syntheticGold(ROWS, 7), { trees: 100, maxDepth: 16, seed: 7, progress: false, featureDefinitions: FEATURE_DEFINITIONS_VERSION });
  if (cached) await writeForestFile(cached, forest);
  return forest;
}

async function main(): Promise<void> {
  const forest = await forestFor();
  const nodes = forest.trees.reduce((s, t) => s + t.feature.length, 0);
  const validator = new RequestValidator(forest.features, 100, 'missing', { featureDefinitions: FEATURE_DEFINITIONS_VERSION, label: 'bench' });
  const compiled = CompiledForest.compile(forest);
  const lines: string[] = [`bench:raw-lines — ${forest.trees.length} trees, ${nodes.toLocaleString('en-US')} nodes; µs per basket, fastest of ${ROUNDS} interleaved rounds`];
  for (const n of [12, 3, 35]) {
    // Parsed from JSON, as a request body is (object literals have other property layouts).
    const baskets = Array.from({ length: 256 }, (_, i) => JSON.parse(JSON.stringify(sampleLines(n, i))) as ReturnType<typeof sampleLines>);
    const rows = baskets.map((b) => validator.parsePredict(b).rows[0]);
    const typed = baskets.map((b) => typeRawLines(b.lines).typed);
    const [requestUs, typeUs, aggregateUs, scoreUs] = interleaved(
      [(i) => validator.parsePredict(baskets[i & 255]), (i) => typeRawLines(baskets[i & 255].lines), (i) => featuresOfTypedLines(typed[i & 255]), (i) => compiled.predict(rows[i & 255])],
      Math.round(60_000 / n),
      ROUNDS,
    );
    const target = n === 12 ? ` (target <= 1: ${requestUs <= scoreUs ? 'met' : 'MISSED'})` : '';
    lines.push(
      `  ${String(n).padStart(2)}-line basket: features from lines ${requestUs.toFixed(2)} µs (typing ${typeUs.toFixed(2)}, aggregation ${aggregateUs.toFixed(2)}) ` +
        `vs scoring ${scoreUs.toFixed(2)} µs = ${(requestUs / scoreUs).toFixed(3)}${target}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:raw-lines failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
