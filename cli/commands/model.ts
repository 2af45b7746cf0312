/**
 * `pricesense model export|import`: model interchange with ONNX (docs/model-format.md,
 * "ONNX"). Export takes a forest file or a registry version; import turns an ONNX tree
 * ensemble into a sealed forest file that can be evaluated (--lake), registered,
 * approved and served like a trained one.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { UserError } from '../../core/errors';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import { openLake } from '../../etl/lake';
import { formatEvaluation } from '../../model/evaluate';
import { parseForest, readForestFile, sealForest, writeForestFile } from '../../model/forest-file';
import { evaluateWithGates, formatGateReport, gateFailureMessage } from '../../model/gates';
import { exportForestToOnnx, type OnnxExportOptions } from '../../model/onnx/export';
import { DEFAULT_MAX_NODES, importOnnxForest } from '../../model/onnx/import';
import { writeFileAtomic } from '../../core/atomic-file';
import { parseInputSpec } from '../../model/onnx/input-spec';
import { openRegistry, registryUri } from '../../model/registry';
import { addGateOptions, gateConfigFrom, type GateFlags } from '../gate-options';
import { defaultFrom, integer } from '../option-parsers';
import { parseVersion, registerTrainedModel } from './registry';
import { register as registerUpgrade } from './model-upgrade';

/** Writes bytes next to the target (creating its directory, as import's forest file does), then renames: readers never see a partial file. */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot write ${file}: ${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code === 'ENOTDIR' || code === 'EEXIST' ? 'a parent is a file, not a directory' : (err as Error).message}`);
  }
}

async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
}

interface ExportFlags {
  model: string;
  format: string;
  out: string;
  registry?: string;
  hardVoteTies: 'refuse' | 'lowest-index';
  json?: boolean;
}

interface ImportFlags extends GateFlags {
  out: string;
  features?: string;
  maxNodes: number;
  lake?: string;
  register?: boolean;
  skipGates?: boolean;
  registry?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const model = program.command('model').description('forest files: export to ONNX, import an ONNX tree ensemble, upgrade between format versions');

  model
    .command('export')
    .description('write a forest as an ONNX model (one ai.onnx.ml TreeEnsembleClassifier, double input, exact against the walker)')
    .requiredOption('--model <file|version>', 'a forest file, or a registry version number ("latest" = the served Approved version)')
    .addOption(new Option('--format <format>', 'output format').choices(['onnx']).default('onnx'))
    .requiredOption('--out <file>', 'where to write the .onnx file')
    .option('--registry <uri>', 'registry for a version: a directory or sagemaker://<group> ' + defaultFrom('registry'))
    .addOption(
      new Option('--hard-vote-ties <rule>', "a hard-vote forest breaking ties 'first-to-reach' cannot be expressed: refuse, or export with lowest-index ties")
        .choices(['refuse', 'lowest-index'])
        .default('refuse'),
    )
    .option('--json', 'print what was written as JSON')
    .action(async (opts: ExportFlags) => {
      const options: { hardVoteTies: 'refuse' | 'lowest-index'; registry?: OnnxExportOptions['registry'] } = { hardVoteTies: opts.hardVoteTies };
      let forest;
      let from: string;
      if (existsSync(opts.model) || !/^(\d+|latest)$/.test(opts.model)) {
        forest = await readForestFile(opts.model);
        from = opts.model;
      } else {
        const reg = await openRegistry(registryUri(opts.registry));
        const v = opts.model === 'latest' ? await reg.latestApproved() : await reg.show(parseVersion(opts.model));
        if (!v) throw new UserError(`no Approved version in ${reg.uri}: nothing to export as "latest"`);
        forest = parseForest(await reg.fetch(v.version), `${reg.uri} version ${v.version}`);
        options.registry = { uri: reg.uri, version: v.version, status: v.status, artifactSha256: v.artifactSha256 };
        from = `version ${v.version} (${v.status}) of ${reg.uri}`;
      }
      const { bytes, summary } = exportForestToOnnx(forest, options);
      await writeAtomically(opts.out, bytes);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ out: opts.out, forestSha256: forest.sha256, registry: options.registry ?? null, ...summary }, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `exported ${from} (sha256 ${forest.sha256.slice(0, 12)}…): ${summary.trees} trees, ${summary.forestNodes.toLocaleString('en-US')} nodes → ` +
          `${summary.onnxNodes.toLocaleString('en-US')} TreeEnsembleClassifier nodes, ${summary.bytes.toLocaleString('en-US')} bytes\n` +
          `wrote ${opts.out}: input X double [N, ${forest.features.length}] (features, category codes and NaN for missing in its metadata_props), outputs label and probabilities\n`,
      );
    });

  const imp = model
    .command('import')
    .description('turn an ONNX tree ensemble (TreeEnsembleClassifier opsets 1-4, TreeEnsemble opset 5) into a sealed forest file; with --lake, evaluate it and check the quality gates (exit 3 on failure)')
    .argument('<model.onnx>', 'the ONNX model')
    .requiredOption('--out <file>', 'where to write the forest file')
    .option('--features <spec.json>', 'input description when the model does not carry one: {"features": [...], "categorical_codes": {...}, "missing_encoded_as": -1}')
    .option('--max-nodes <n>', 'refuse models with more tree nodes than this', integer('--max-nodes', 1), DEFAULT_MAX_NODES)
    .option('--lake <uri>', 'evaluate on this lake\'s gold test split and record metrics and gate results in the forest')
    .option('--register', 'register the forest (status PendingManualApproval) when its gates pass; needs --lake, or --skip-gates')
    .option('--skip-gates', 'with --register and no --lake: register a forest that was never evaluated (the registry note says so)')
    .option('--registry <uri>', 'registry for --register ' + defaultFrom('registry'))
    .option('--json', 'print the import report as JSON');
  addGateOptions(imp).action(async (file: string, opts: ImportFlags) => {
    if (opts.register && !opts.lake && !opts.skipGates) {
      throw new UserError('--register needs --lake <uri> (evaluate the imported forest on the gold test split and apply the quality gates first), or --skip-gates to register a forest that was never evaluated');
    }
    const bytes = await readInput(file, 'ONNX model');
    let spec;
    if (opts.features) {
      const text = (await readInput(opts.features, 'feature spec')).toString('utf8');
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new UserError(`${opts.features}: not valid JSON (${(err as Error).message})`);
      }
      spec = parseInputSpec(doc, opts.features);
    }
    const imported = importOnnxForest(bytes, { spec, source: file, maxNodes: opts.maxNodes });
    let forest = imported.forest;
    let report: ReturnType<typeof evaluateWithGates> | undefined;
    if (opts.lake) {
      const lake = await openLake(opts.lake);
      const manifest = await readGoldManifest(lake);
      const test = await readGoldSplit(lake, 'test', manifest);
      report = evaluateWithGates(forest, test, 'test', { config: gateConfigFrom(opts) });
      // The serving drift baseline, as a trained forest gets it: the gold train split's statistics of its features.
      const trainStats = manifest.manifest.meta.stats?.train ?? {};
      const featureStats = Object.fromEntries(forest.features.filter((f) => trainStats[f.name] !== undefined).map((f) => [f.name, trainStats[f.name]]));
      forest = sealForest({ ...forest, featureStats, metrics: { test: report.metrics, gates: report.gates, evaluatedOn: manifest.sha256 } });
    }
    await writeForestFile(opts.out, forest);
    const registered = opts.register && (!report || report.gates.passed) ? await registerTrainedModel(opts.out, { registry: opts.registry, note: `imported from ${file} (sha256 ${imported.summary.onnxSha256})${report ? '' : '; not evaluated (--skip-gates)'}` }) : undefined;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ out: opts.out, sha256: forest.sha256, lineage: `imported from ${imported.summary.onnxSha256}`, ...imported.summary, metrics: forest.metrics, registered: registered ? { registry: registered.registry, version: registered.version.version } : null }, null, 2)}\n`);
    } else {
      const s = imported.summary;
      const lines = [
        `imported ${file} (${s.operator}, ai.onnx.ml opset ${s.opset}, ${s.inputType} input, sha256 ${s.onnxSha256.slice(0, 12)}…): ${s.trees} trees, ${s.onnxNodes.toLocaleString('en-US')} ONNX nodes → ${s.forestNodes.toLocaleString('en-US')} forest nodes`,
        `wrote ${opts.out} (sha256 ${forest.sha256}; lineage: imported from ${s.onnxSha256})`,
      ];
      if (report) lines.push(formatEvaluation(report.metrics, forest.classes), formatGateReport(report.gates));
      else lines.push('not evaluated: pass --lake to evaluate it on the gold test split and check the quality gates');
      if (registered) lines.push(registered.summary);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    if (report && !report.gates.passed) {
      throw new UserError(`${gateFailureMessage(report.gates)} (the forest was written to ${opts.out} with the gate results in its metrics${opts.register ? '; not registered' : ''})`, 'gate_failed');
    }
  });
  // `model upgrade` (format v1 → v2) lives in its own module and joins this command.
  registerUpgrade(program);
}
