/**
 * `pricesense registry`: register a trained forest, approve or reject a version,
 * list, show, compare and fetch versions, verify and migrate the audit trails. Works on either backend (--registry URI).
 */
import type { Command } from 'commander';
import { writeFileAtomic } from '../../core/atomic-file';
import { exitCodeOf } from '../../core/error-kinds';
import { UserError } from '../../core/errors';
import {
  gateFailure,
  gatesToOverride,
  hasGateResults,
  openRegistry,
  parseStatus,
  registryUri,
  type ChainStanding,
  type MigrationReport,
  type ModelVersion,
  type Registry,
  type VersionMigration,
  type VerifyReport,
} from '../../model/registry';
import { addCardCommand } from './registry-card';
import { defaultFrom } from '../option-parsers';

interface Common {
  registry?: string;
  json?: boolean;
}

export const REGISTRY_HELP = 'registry URI: a directory or sagemaker://<group> ' + defaultFrom('registry');

export function register(program: Command): void {
  const registry = program
    .command('registry')
    .description('model registry: register trained forests, approve/reject versions (rollback), list, show, compare, fetch, verify, migrate');

  registry
    .command('register')
    .description('register a forest file as a new version, status PendingManualApproval')
    .requiredOption('--model <path>', 'forest file (JSON) to register')
    .option('--force', 'register even though its evaluation failed the quality gates (recorded in lineage and audit)')
    .option('--note <text>', 'note recorded in the audit trail', '')
    .option('--by <name>', 'who is registering ' + defaultFrom('user', 'the OS user'))
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--json', 'print the new version as JSON')
    .action(async (opts: Common & { model: string; force?: boolean; note: string; by?: string }) => {
      const reg = await open(opts);
      const v = await reg.register(opts.model, { force: opts.force, note: opts.note, by: opts.by });
      printWarnings(v);
      if (opts.json) return printJson(v);
      const lines = [`registered version ${v.version} in ${reg.uri} (status ${v.status})`];
      if (v.lineage.forced) lines.push(`WARNING: forced registration despite failed gates (${gateFailure(v.metrics) ?? 'see metrics.gates'})`);
      else if (!hasGateResults(v.metrics)) lines.push('note: this forest carries no gate results (not evaluated)');
      lines.push(`approve it with: pricesense registry approve ${v.version} --note "<why>"${registryFlag(opts, reg)}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  for (const [name, verb] of [
    ['approve', 'approve a version: it becomes servable (the newest Approved version is the one served)'],
    ['reject', 'reject a version; rejecting the served version rolls serving back to the previous Approved one'],
  ] as const) {
    const cmd = registry
      .command(name)
      .description(verb)
      .argument('<version>', 'version number')
      .requiredOption('--note <text>', 'why (recorded in the audit trail)')
      .option('--by <name>', 'who is deciding ' + defaultFrom('user', 'the OS user'));
    if (name === 'approve') {
      cmd
        .option('--override-gates', 'approve although the quality gates failed or were never run (needs --reason; recorded as a gate override in the audit trail)')
        .option('--reason <text>', 'why the gates may be overridden (with --override-gates)');
    }
    cmd
      .option('--registry <uri>', REGISTRY_HELP)
      .option('--json', 'print the version as JSON')
      .action(async (version: string, opts: Common & { note: string; by?: string; overrideGates?: boolean; reason?: string }) => {
        if (!opts.note.trim()) throw new UserError(`${name} needs a non-empty --note saying why`);
        if (opts.overrideGates && !opts.reason?.trim()) throw new UserError('--override-gates needs --reason "<why the gates may be overridden>"');
        if (opts.reason !== undefined && !opts.overrideGates) throw new UserError('--reason goes with --override-gates');
        const reg = await open(opts);
        const before = await reg.latestApproved();
        const n = parseVersion(version);
        const current = await reg.show(n);
        const toOverride = name === 'approve' ? gatesToOverride(current.metrics) : undefined;
        if (toOverride && !opts.overrideGates) {
          const what = gateFailure(current.metrics) ? `failed its quality gates (${toOverride})` : 'has no quality gate results (it was never evaluated)';
          throw new UserError(`version ${n} ${what}: approving it needs --override-gates --reason "<why>" (recorded in the audit trail); nothing was changed`, 'gate_failed');
        }
        // Decided on the status just read: if another change lands first, this one changes nothing.
        const options = { expected: current.status, ...(opts.overrideGates ? { overrideGates: { reason: opts.reason ?? '' } } : {}) };
        const v = name === 'approve' ? await reg.approve(n, opts.note, opts.by, options) : await reg.reject(n, opts.note, opts.by, options);
        printWarnings(v);
        if (opts.json) return printJson(v);
        const after = await reg.latestApproved();
        const last = v.audit[v.audit.length - 1];
        const override = last.override ? `\nGATE OVERRIDE recorded: ${last.override.gates}; reason: ${last.override.reason}` : '';
        process.stdout.write(`version ${v.version}: ${last.from} -> ${last.to} (by ${last.by})${override}\n${servingChange(before, after)}\n`);
      });
  }

  registry
    .command('list')
    .description('list versions with status and headline metrics')
    .option('--status <status>', 'only this status: PendingManualApproval|Approved|Rejected (or pending/approved/rejected)')
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--json', 'print JSON')
    .action(async (opts: Common & { status?: string }) => {
      const reg = await open(opts);
      const status = opts.status ? parseStatus(opts.status) : undefined;
      const versions = await reg.list({ status });
      if (opts.json) return printJson(versions);
      if (versions.length === 0) {
        process.stdout.write(`no ${status ? `${status} ` : ''}versions in ${reg.uri}\n`);
        return;
      }
      const served = (await reg.latestApproved())?.version;
      const rows = versions.map((v) => {
        const m = headline(v.metrics);
        return [
          `${v.version}${v.version === served ? '*' : ''}`,
          v.status,
          v.lineage.registeredAt.slice(0, 19).replace('T', ' '),
          v.lineage.registeredBy,
          fmt(m.accuracy),
          fmt(m.macroF1),
          gatesCell(v),
          v.forestSha256.slice(0, 12),
        ];
      });
      process.stdout.write(table(['VERSION', 'STATUS', 'REGISTERED (UTC)', 'BY', 'ACCURACY', 'MACRO_F1', 'GATES', 'FOREST'], rows));
      if (served !== undefined) process.stdout.write(`* served: latest Approved version (${served})\n`);
    });

  registry
    .command('show')
    .description('one version: digests, lineage, metrics, audit trail ("latest" = the served version)')
    .argument('<version>', 'version number, or "latest" for the latest Approved')
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--json', 'print JSON')
    .action(async (version: string, opts: Common) => {
      const reg = await open(opts);
      const v = await resolve(reg, version);
      if (opts.json) return printJson(v);
      process.stdout.write(describe(v));
    });

  registry
    .command('compare')
    .description('two versions side by side: metrics and lineage, with differences')
    .argument('<a>', 'version number or "latest"')
    .argument('<b>', 'version number or "latest"')
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--json', 'print JSON')
    .action(async (a: string, b: string, opts: Common) => {
      const reg = await open(opts);
      const [va, vb] = [await resolve(reg, a), await resolve(reg, b)];
      const rows = compareRows(va, vb);
      if (opts.json) return printJson({ a: va.version, b: vb.version, rows });
      process.stdout.write(table(['', `v${va.version}`, `v${vb.version}`, 'DELTA'], rows.map((r) => [r.field, r.a, r.b, r.delta])));
    });

  registry
    .command('fetch')
    .description('write a version\'s forest file after verifying its SHA-256 ("latest" = the served version)')
    .argument('<version>', 'version number, or "latest"')
    .requiredOption('--out <path>', 'where to write the forest file')
    .option('--registry <uri>', REGISTRY_HELP)
    .action(async (version: string, opts: Common & { out: string }) => {
      const reg = await open(opts);
      const v = await resolve(reg, version);
      const bytes = await reg.fetch(v.version);
      await writeFileAtomic(opts.out, bytes);
      process.stdout.write(`wrote version ${v.version} (${v.status}, sha256 ${v.artifactSha256}) to ${opts.out}\n`);
    });

  addCardCommand(registry, REGISTRY_HELP);

  registry
    .command('migrate')
    .description(
      'seal the audit trails a pricesense from before the hash chain wrote: adds a genesis entry per version recording that the history before it was not tamper-evident (only adds; safe to re-run); exit 5 if a version could not be sealed',
    )
    .option('--by <name>', 'who is migrating, recorded in each genesis entry ' + defaultFrom('user', 'the OS user'))
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--accept-unchained <versions>', 'comma-separated versions to seal although the registry already has chained versions and no CHAIN.json marker (a registry upgraded before the marker existed; local or SageMaker): only after checking their audit folders or objects against a backup', versionList)
    .option('--json', 'print the report as JSON')
    .action(async (opts: Common & { by?: string; acceptUnchained?: number[] }) => {
      const reg = await open(opts);
      const report = await reg.migrate({ by: opts.by, acceptUnchained: opts.acceptUnchained });
      if (opts.json) printJson(report);
      else process.stdout.write(migrateText(report));
      if (!report.ok) process.exitCode = exitCodeOf('integrity');
    });

  registry
    .command('verify')
    .description("check every version: its audit trail's hash chain (and, on SageMaker, against SageMaker's status) and its stored artifact's SHA-256; exit 5 (integrity) if any fails")
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--json', 'print the report as JSON')
    .action(async (opts: Common) => {
      const reg = await open(opts);
      const report = await reg.verify();
      if (opts.json) printJson(report);
      else process.stdout.write(verifyText(report));
      if (!report.ok) process.exitCode = exitCodeOf('integrity');
    });
}

/** How `show` marks an entry that is not an ordinary linked one (AuditEntry.chain). */
const CHAIN_MARK: Record<ChainStanding, string> = {
  sealed: 'sealed: written before the chain',
  unsealed: 'UNSEALED: written before the chain, not covered by it',
  outside: 'outside the chain: from SageMaker',
  'not-applied': 'NOT APPLIED: SageMaker never took this change',
};

function migrateText(report: MigrationReport): string {
  if (report.versions.length === 0) return `no versions in ${report.registry}: nothing to migrate\n`;
  const what: Record<VersionMigration['result'], string> = { sealed: 'sealed', resumed: 'sealed (finished an interrupted run)', chained: 'already chained', failed: 'FAILED (left untouched)' };
  const rows = report.versions.map((v) => [String(v.version), what[v.result], v.legacyEntries === undefined ? '-' : String(v.legacyEntries)]);
  const notes = report.versions.filter((v) => v.problem).map((v) => `version ${v.version}: ${v.problem}\n`);
  const sealed = report.versions.filter((v) => v.result === 'sealed' || v.result === 'resumed').length;
  const failed = report.versions.filter((v) => v.result === 'failed').length;
  const verdict = report.ok
    ? `${report.registry}: ${sealed} version(s) sealed into the audit chain, ${report.versions.length - sealed} already chained; every version's trail is chained now`
    : `${report.registry}: ${failed} version(s) could not be sealed (their trail does not verify: see above) and stay unservable; the others are chained. Restore those trails from a backup, or reject and re-register the versions.`;
  return `${table(['VERSION', 'RESULT', 'SEALED ENTRIES'], rows)}${notes.join('')}${verdict}\n`;
}

function verifyText(report: VerifyReport): string {
  if (report.versions.length === 0) return `no versions in ${report.registry}: nothing to verify\n`;
  const rows = report.versions.map((v) => [String(v.version), v.status ?? '?', v.problems.length > 0 ? 'FAILED' : v.warnings.length > 0 ? 'ok (warnings)' : 'ok']);
  const notes = report.versions.flatMap((v) => [...v.problems.map((p) => `version ${v.version}: FAILED: ${p}`), ...v.warnings.map((w) => `version ${v.version}: warning: ${w}`)]);
  const failed = report.versions.filter((v) => v.problems.length > 0).length;
  const verdict = report.ok
    ? `${report.registry}: all ${report.versions.length} version(s) verified (audit trail and artifact digest)`
    : `${report.registry}: ${failed} of ${report.versions.length} version(s) FAILED verification; they are not served. Restore the altered files from a backup, or reject and re-register the version.`;
  return `${table(['VERSION', 'STATUS', 'RESULT'], rows)}${notes.map((n) => `${n}\n`).join('')}${verdict}\n`;
}

/**
 * For `pricesense train --register`: registers the forest just written (status
 * PendingManualApproval). Gate failures are refused (UserError) like `registry register`.
 */
export async function registerTrainedModel(
  modelPath: string,
  options: { registry?: string; note?: string; by?: string } = {},
): Promise<{ registry: string; version: ModelVersion; summary: string }> {
  const reg = await openRegistry(registryUri(options.registry));
  const version = await reg.register(modelPath, { note: options.note ?? 'registered by pricesense train --register', by: options.by });
  printWarnings(version);
  const flag = options.registry ? ` --registry ${reg.uri}` : '';
  const summary = `registered version ${version.version} in ${reg.uri} (status ${version.status}); approve it with: pricesense registry approve ${version.version} --note "<why>"${flag}`;
  return { registry: reg.uri, version, summary };
}

/** A write's warnings (an upgrade step still to run) go to stderr, so --json output stays one document. */
function printWarnings(v: ModelVersion): void {
  for (const w of v.warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
}

async function open(opts: Common): Promise<Registry> {
  return openRegistry(registryUri(opts.registry));
}

function registryFlag(opts: Common, reg: Registry): string {
  return opts.registry ? ` --registry ${reg.uri}` : '';
}

export function parseVersion(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new UserError(`invalid version '${text}': expected a positive integer`);
  return Number(text);
}

/** `1,2,5` → [1, 2, 5] (each a version number). */
function versionList(text: string): number[] {
  return text.split(',').map((t) => parseVersion(t));
}

async function resolve(reg: Registry, version: string): Promise<ModelVersion> {
  if (version === 'latest') {
    const v = await reg.latestApproved();
    if (!v) throw new UserError(`no Approved version in ${reg.uri}: nothing is servable yet`);
    return v;
  }
  return reg.show(parseVersion(version));
}

function servingChange(before: ModelVersion | undefined, after: ModelVersion | undefined): string {
  const name = (v: ModelVersion | undefined): string => (v ? `version ${v.version}` : 'nothing (no Approved version)');
  if (before?.version === after?.version) return `served model unchanged: ${name(after)}`;
  return `served model: ${name(before)} -> ${name(after)} (the API picks this up on its next reload)`;
}

/** Accuracy, macro-F1 and log-loss, wherever the evaluation put them (top level or under test/evaluation). */
export function headline(metrics: Record<string, unknown>): { accuracy?: number; macroF1?: number; logLoss?: number } {
  const scopes = [metrics, metrics.test, metrics.evaluation, metrics.holdout].filter((s): s is Record<string, unknown> => !!s && typeof s === 'object');
  const pick = (key: string): number | undefined => {
    for (const s of scopes) if (typeof s[key] === 'number') return s[key] as number;
    return undefined;
  };
  return { accuracy: pick('accuracy'), macroF1: pick('macroF1'), logLoss: pick('logLoss') };
}

function gatesCell(v: ModelVersion): string {
  if (!hasGateResults(v.metrics)) return '-';
  if (gateFailure(v.metrics)) return v.lineage.forced ? 'FAILED(forced)' : 'FAILED';
  return 'passed';
}

function fmt(n: number | undefined): string {
  return n === undefined ? '-' : n.toFixed(4);
}

function describe(v: ModelVersion): string {
  const m = headline(v.metrics);
  const l = v.lineage;
  const lines = [
    `version ${v.version}  ${v.status}`,
    `  forest sha256     ${v.forestSha256}  (format v${v.formatVersion})`,
    `  artifact          ${v.artifactUri}`,
    `  artifact sha256   ${v.artifactSha256}`,
    `  registered        ${l.registeredAt} by ${l.registeredBy}${l.forced ? '  FORCED despite failed gates' : ''}`,
    `  dataset manifest  ${l.datasetManifestSha256 ?? '-'}`,
    `  code version      ${l.codeVersion ?? '-'}`,
    `  hyperparameters   ${JSON.stringify(l.hyperparameters)}`,
    `  metrics           accuracy ${fmt(m.accuracy)}  macroF1 ${fmt(m.macroF1)}  logLoss ${fmt(m.logLoss)}  gates ${gatesCell(v)}`,
    '  audit',
    ...v.audit.map((e) => `    ${e.at}  ${e.by}  ${e.from ?? '(new)'} -> ${e.to}${e.note ? `  "${e.note}"` : ''}${e.override ? `  GATE OVERRIDE (${e.override.gates}): "${e.override.reason}"` : ''}${e.chain ? `  [${CHAIN_MARK[e.chain]}]` : ''}`),
  ];
  return `${lines.join('\n')}\n`;
}

interface CompareRow {
  field: string;
  a: string;
  b: string;
  delta: string;
}

function compareRows(a: ModelVersion, b: ModelVersion): CompareRow[] {
  const rows: CompareRow[] = [{ field: 'status', a: a.status, b: b.status, delta: '' }];
  const ma = headline(a.metrics);
  const mb = headline(b.metrics);
  for (const key of ['accuracy', 'macroF1', 'logLoss'] as const) {
    const x = ma[key];
    const y = mb[key];
    const delta = x !== undefined && y !== undefined ? `${y - x >= 0 ? '+' : ''}${(y - x).toFixed(4)}` : '';
    rows.push({ field: key, a: fmt(x), b: fmt(y), delta });
  }
  rows.push({ field: 'gates', a: gatesCell(a), b: gatesCell(b), delta: '' });
  const same = (x: unknown, y: unknown): string => (JSON.stringify(x) === JSON.stringify(y) ? 'same' : 'differs');
  rows.push({ field: 'dataset manifest', a: short(a.lineage.datasetManifestSha256), b: short(b.lineage.datasetManifestSha256), delta: same(a.lineage.datasetManifestSha256, b.lineage.datasetManifestSha256) });
  rows.push({ field: 'code version', a: short(a.lineage.codeVersion), b: short(b.lineage.codeVersion), delta: same(a.lineage.codeVersion, b.lineage.codeVersion) });
  const keys = [...new Set([...Object.keys(a.lineage.hyperparameters), ...Object.keys(b.lineage.hyperparameters)])].sort();
  for (const k of keys) {
    const x = a.lineage.hyperparameters[k];
    const y = b.lineage.hyperparameters[k];
    rows.push({ field: `hp.${k}`, a: JSON.stringify(x) ?? '-', b: JSON.stringify(y) ?? '-', delta: same(x, y) });
  }
  return rows;
}

function short(s: string | null): string {
  return s ? s.slice(0, 12) : '-';
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
