/**
 * The model card of a registered version (after Mitchell et al., "Model Cards for
 * Model Reporting"): model details, intended use, training data and its manifest,
 * evaluation by class, calibration, quality gates, known limits and the approval
 * history. Built once as a document, rendered as Markdown (`pricesense registry card`)
 * or HTML (the same command with --format html, and the console's version page).
 */
import type { GoldManifest } from '../etl/gold';
import type { ModelVersion } from '../model/registry';
import { bound } from './charts/reliability';
import { html, trusted, type Html } from './html';
import { evaluationOf, gateReportOf, gateStatus, type EvaluationView } from './evaluation-view';
import type { VersionData, VersionInsights } from './version-data';

export type Block =
  | { readonly kind: 'p'; readonly text: string }
  | { readonly kind: 'list'; readonly items: readonly string[] }
  | { readonly kind: 'table'; readonly headers: readonly string[]; readonly rows: readonly (readonly string[])[] };

export interface CardSection {
  readonly id: string;
  readonly title: string;
  readonly blocks: readonly Block[];
}

export interface ModelCard {
  readonly title: string;
  readonly summary: string;
  readonly sections: readonly CardSection[];
}

export interface CardInput {
  readonly version: ModelVersion;
  /** Facts from the forest file; a string says why they are missing. */
  readonly insights: VersionInsights | string;
  /** The lake's gold manifest; a string says why there is none. */
  readonly gold: GoldManifest | string;
  readonly registryUri: string;
  readonly generatedAt: string;
}

const f4 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const p = (text: string): Block => ({ kind: 'p', text });

function modelDetails(v: ModelVersion, facts: VersionInsights | string): CardSection {
  const rows: string[][] = [
    ['Version', `${v.version} (${v.status})`],
    ['Forest SHA-256', v.forestSha256],
    ['Artifact SHA-256', v.artifactSha256],
    ['Registered', `${v.lineage.registeredAt} by ${v.lineage.registeredBy}${v.lineage.forced ? ' — FORCED despite failed quality gates' : ''}`],
    ['Code version', v.lineage.codeVersion ?? 'not recorded'],
    ['Hyperparameters', JSON.stringify(v.lineage.hyperparameters)],
  ];
  if (typeof facts === 'string') {
    rows.push(['Forest file', `not read: ${facts}`]);
  } else {
    const t = facts.training;
    rows.push(
      ['Algorithm', `random forest, ${facts.trees} trees, ${facts.nodes.toLocaleString('en-US')} nodes, ${facts.aggregation === 'soft' ? 'mean of leaf class distributions' : 'majority vote'}`],
      ['Trainer', `${t.trainer}${t.treeRange ? ` (trees ${t.treeRange.start}–${t.treeRange.end} of ${t.treeRange.trees})` : ''}, seed ${t.seed}, ${t.rows.toLocaleString('en-US')} training rows, created ${t.createdAt}`],
      ['Classes', facts.classes.join(', ')],
      ['Inputs', facts.features.map((f) => `${f.name} (${f.kind})`).join(', ')],
    );
  }
  return { id: 'details', title: 'Model details', blocks: [{ kind: 'table', headers: ['', ''], rows }] };
}

function intendedUse(classes: readonly string[]): CardSection {
  return {
    id: 'intended-use',
    title: 'Intended use',
    blocks: [
      p(
        `Predicts the price sensitivity of a retail basket (${classes.join(' / ')}) from what is known at checkout: the basket's size, spend, mix and timing, the store, and the customer's segment when the customer is known. Served by the pricesense API only once Approved.`,
      ),
      {
        kind: 'list',
        items: [
          'Intended: aggregate pricing and promotion analysis, choosing which baskets a promotion targets, monitoring how price sensitivity shifts across stores and weeks.',
          'Not intended: decisions with legal or similarly significant effects on an individual (credit, insurance, employment), individual price discrimination, or data from another retailer or schema without retraining and re-evaluation.',
          'Users: pricing analysts and the services that call the API; approvers decide whether a version ships.',
        ],
      },
    ],
  };
}

function trainingData(v: ModelVersion, facts: VersionInsights | string, gold: GoldManifest | string): CardSection {
  const blocks: Block[] = [];
  const recorded = v.lineage.datasetManifestSha256;
  blocks.push(p(`Gold data set manifest (SHA-256): ${recorded ?? 'not recorded'}.`));
  if (typeof gold === 'string') {
    blocks.push(p(`The data set's own manifest was not read (${gold}).`));
  } else if (gold.sha256 !== recorded) {
    blocks.push(p(`The lake's current gold manifest (${gold.sha256}) is a different data set: this version was trained before it was published, so its split sizes and class balance are not shown.`));
  } else {
    const meta = gold.manifest.meta;
    const splits = Object.keys(meta.rows) as (keyof typeof meta.rows)[];
    const classes = Object.keys(meta.classBalance.all);
    blocks.push({
      kind: 'table',
      headers: ['split', 'rows', ...classes.map((c) => `${c} share`)],
      rows: splits.map((s) => [s, meta.rows[s].toLocaleString('en-US'), ...classes.map((c) => pct(meta.classBalance[s]?.[c as keyof (typeof meta.classBalance)['all']] ?? 0))]),
    });
    blocks.push(
      p(
        `Split: ${meta.split.method}; ${meta.source.rawFiles.length} raw file(s), ${meta.source.silverRows.toLocaleString('en-US')} silver rows. Label: the basket's price sensitivity (${Object.entries(meta.label.fromBasketPriceSensitivity)
          .map(([code, label]) => `${code} → ${label}`)
          .join(', ')}).`,
      ),
    );
  }
  if (typeof facts !== 'string') {
    const missing = Object.entries(facts.featureStats)
      .map(([name, s]) => ({ name, share: s.count + s.missing > 0 ? s.missing / (s.count + s.missing) : 0 }))
      .filter((m) => m.share > 0)
      .sort((a, b) => b.share - a.share);
    if (missing.length > 0) blocks.push(p(`Missing values in training: ${missing.map((m) => `${m.name} ${pct(m.share)}`).join(', ')}.`));
  }
  return { id: 'training-data', title: 'Training data', blocks };
}

function evaluation(v: ModelVersion): { section: CardSection; test: EvaluationView | null } {
  const blocks: Block[] = [];
  const test = evaluationOf(v.metrics, 'test');
  const validation = evaluationOf(v.metrics, 'validation');
  if (!test) {
    blocks.push(p('This version records no per-class evaluation (it was registered without one, e.g. imported).'));
    return { section: { id: 'evaluation', title: 'Evaluation by class', blocks }, test };
  }
  const splits = [test, validation].filter((e): e is EvaluationView => !!e);
  blocks.push({
    kind: 'table',
    headers: ['split', 'rows', 'accuracy', 'macro F1', 'log loss'],
    rows: splits.map((e) => [e.split, String(e.rows), f4(e.accuracy), f4(e.macroF1), f4(e.logLoss)]),
  });
  blocks.push({
    kind: 'table',
    headers: ['class (test)', 'precision', 'recall', 'F1', 'support'],
    rows: test.classes.map((c) => [c, f4(test.perClass[c].precision), f4(test.perClass[c].recall), f4(test.perClass[c].f1), String(test.perClass[c].support)]),
  });
  blocks.push({
    kind: 'table',
    headers: ['actual ↓ predicted →', ...test.classes],
    rows: test.classes.map((c, i) => [c, ...test.confusion[i].map(String)]),
  });
  return { section: { id: 'evaluation', title: 'Evaluation by class', blocks }, test };
}

function calibration(test: EvaluationView | null): CardSection {
  const cal = test?.calibration;
  if (!cal) return { id: 'calibration', title: 'Calibration', blocks: [p('No calibration summary recorded.')] };
  return {
    id: 'calibration',
    title: 'Calibration',
    blocks: [
      p(
        `Expected calibration error ${f4(cal.expectedCalibrationError)}, largest bin gap ${f4(cal.maxCalibrationError)}, Brier score ${f4(cal.brierScore)} (top-class probability, ${cal.bins.length} equal-width bins, test split).`,
      ),
      {
        kind: 'table',
        headers: ['confidence', 'rows', 'mean confidence', 'accuracy'],
        rows: cal.bins.filter((b) => b.count > 0).map((b) => [`${bound(b.lower)}–${bound(b.upper)}`, String(b.count), pct(b.meanConfidence), pct(b.accuracy)]),
      },
    ],
  };
}

function gates(v: ModelVersion): CardSection {
  const report = gateReportOf(v.metrics);
  if (!report) return { id: 'gates', title: 'Quality gates', blocks: [p(`Gate verdict: ${gateStatus(v)}.`)] };
  return {
    id: 'gates',
    title: 'Quality gates',
    blocks: [
      p(`${report.passed ? 'Passed' : 'FAILED'} on the ${report.split} split${v.lineage.forced ? '; registered with --force' : ''}.`),
      {
        kind: 'table',
        headers: ['gate', 'required', 'actual', 'result'],
        rows: report.results.map((r) => [r.gate, `≥ ${f4(r.required)}`, f4(r.actual), r.passed ? 'pass' : `FAIL (short by ${f4(r.shortfall)})`]),
      },
    ],
  };
}

/** Limits read off the version's own figures, then the ones every version shares. */
function knownLimits(v: ModelVersion, facts: VersionInsights | string, test: EvaluationView | null): CardSection {
  const items: string[] = [];
  if (test) {
    const weakest = [...test.classes].sort((a, b) => test.perClass[a].recall - test.perClass[b].recall)[0];
    const r = test.perClass[weakest].recall;
    items.push(`Weakest class: ${weakest} (recall ${f4(r)}: ${pct(1 - r)} of actual ${weakest} baskets are predicted as another class).`);
    const validation = evaluationOf(v.metrics, 'validation');
    if (validation && Math.abs(validation.accuracy - test.accuracy) > 0.02) {
      items.push(`Validation and test accuracy differ by ${f4(Math.abs(validation.accuracy - test.accuracy))}: the estimate is noisy at this data size.`);
    }
    const cal = test.calibration;
    if (cal) {
      const used = cal.bins.filter((b) => b.count > 0);
      const over = used.filter((b) => b.meanConfidence - b.accuracy > 0.05).length;
      const under = used.filter((b) => b.accuracy - b.meanConfidence > 0.05).length;
      items.push(
        cal.expectedCalibrationError > 0.05
          ? `Probabilities are miscalibrated (ECE ${f4(cal.expectedCalibrationError)}; ${over} bin(s) over-confident, ${under} under-confident): do not read them as frequencies without recalibration.`
          : `Probabilities are close to calibrated (ECE ${f4(cal.expectedCalibrationError)}), on data like the test split.`,
      );
    }
  }
  if (typeof facts !== 'string') {
    const missing = Object.entries(facts.featureStats).filter(([, s]) => s.count + s.missing > 0 && s.missing / (s.count + s.missing) > 0.05);
    if (missing.length > 0) {
      items.push(`${missing.map(([n]) => n).join(', ')} ${missing.length === 1 ? 'is' : 'are'} often missing (e.g. anonymous baskets): those predictions rest on the remaining inputs.`);
    }
    items.push(
      'A category not seen in training (a new store format or region) is scored by the API as missing, following each split\'s default direction, and counted per feature (pricesense_unknown_categories_total); an API started with PRICESENSE_UNKNOWN_CATEGORIES=reject refuses such a request with 400 instead. Watch the drift and unknown-category figures after a store opening.',
    );
    if (facts.aggregation === 'hard') items.push('Probabilities are vote fractions of the trees (hard voting), coarse by construction.');
    items.push(`Trained on data up to ${facts.training.createdAt.slice(0, 10)}; price sensitivity moves with promotions and seasons, so retrain when the API reports drift (PSI > 0.25).`);
  }
  if (v.lineage.forced) items.push('Registered with --force although its quality gates failed.');
  const override = [...v.audit].reverse().find((e) => e.override);
  if (override?.override) items.push(`Approved by ${override.by} with a gate override (${override.override.gates}): ${override.override.reason}.`);
  return { id: 'limits', title: 'Known limits', blocks: [{ kind: 'list', items }] };
}

function approvalHistory(v: ModelVersion): CardSection {
  return {
    id: 'approval-history',
    title: 'Approval history',
    blocks: [
      {
        kind: 'table',
        headers: ['when (UTC)', 'who', 'change', 'note', 'gate override'],
        rows: v.audit.map((e) => [e.at, e.by, `${e.from ?? 'registered'} → ${e.to}`, e.note || '—', e.override ? `OVERRIDE of ${e.override.gates}: ${e.override.reason}` : '—']),
      },
    ],
  };
}

export function buildModelCard(input: CardInput): ModelCard {
  const v = input.version;
  const facts = input.insights;
  const classes = typeof facts === 'string' ? (evaluationOf(v.metrics)?.classes ?? []) : facts.classes;
  const { section: evalSection, test } = evaluation(v);
  const headline = test ? `test accuracy ${f4(test.accuracy)}, macro F1 ${f4(test.macroF1)}` : 'no recorded evaluation';
  return {
    title: `Model card: pricesense price sensitivity, version ${v.version}`,
    summary: `${v.status}; ${headline}; quality gates ${gateStatus(v)}. Registry ${input.registryUri}; generated ${input.generatedAt}.`,
    sections: [
      modelDetails(v, facts),
      intendedUse(classes),
      trainingData(v, facts, input.gold),
      evalSection,
      calibration(test),
      gates(v),
      knownLimits(v, facts, test),
      approvalHistory(v),
    ],
  };
}

/**
 * The card of a registered version, reading its forest and (unless the caller has read it
 * for this request) the lake's manifest through the console's data access.
 */
export async function modelCardOf(data: VersionData, v: ModelVersion, lakeGold?: GoldManifest | string): Promise<ModelCard> {
  const gold = lakeGold ?? (await data.goldManifest());
  const insights = await data.insightsOrReason(v, gold);
  return buildModelCard({ version: v, insights, gold, registryUri: data.registry.uri, generatedAt: new Date().toISOString() });
}

/**
 * Plain text as Markdown that renders as exactly that text. Every string of a card may
 * come from registry content (identities, notes, code version, hyperparameters, feature
 * and class names), so none may become markup: HTML's specials become entities (no raw
 * HTML, no <autolink>), Markdown's inline syntax is backslash-escaped (no links, images,
 * emphasis, code spans, table cells), line breaks become spaces and a leading block
 * marker is escaped (no heading, list, quote or code block).
 */
export function mdText(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~!]/g, '\\$&')
    .replace(/^[#+=-]/, '\\$&')
    .replace(/^(\d+)([.)])/, '$1\\$2');
}

export function cardMarkdown(card: ModelCard): string {
  const row = (cells: readonly string[]): string => `| ${cells.map(mdText).join(' | ')} |`;
  const out: string[] = [`# ${mdText(card.title)}`, '', mdText(card.summary), ''];
  for (const s of card.sections) {
    out.push(`## ${mdText(s.title)}`, '');
    for (const b of s.blocks) {
      if (b.kind === 'p') out.push(mdText(b.text), '');
      else if (b.kind === 'list') out.push(...b.items.map((i) => `- ${mdText(i)}`), '');
      else {
        const headers = b.headers.every((h) => h === '') ? b.headers.map((_, i) => (i === 0 ? 'field' : 'value')) : b.headers;
        out.push(row(headers), `| ${headers.map(() => '---').join(' | ')} |`, ...b.rows.map(row), '');
      }
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function blockHtml(b: Block): Html {
  if (b.kind === 'p') return html`<p>${b.text}</p>`;
  if (b.kind === 'list') return html`<ul>${b.items.map((i) => html`<li>${i}</li>`)}</ul>`;
  const head = b.headers.every((h) => h === '') ? '' : html`<thead><tr>${b.headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>`;
  return html`<table>${head}<tbody>${b.rows.map((r) => html`<tr>${r.map((c, i) => (i === 0 ? html`<th scope="row">${c}</th>` : html`<td>${c}</td>`))}</tr>`)}</tbody></table>`;
}

/** The card as an HTML fragment (headings start at h2 + offset). */
export function cardFragment(card: ModelCard, headingLevel = 2): Html {
  const h = (text: string, id: string): Html => {
    const level = Math.min(6, headingLevel);
    return html`${trusted(`<h${level} id="card-${id}">`)}${text}${trusted(`</h${level}>`)}`;
  };
  return html`<article class="model-card"><p class="card-summary">${card.summary}</p>${card.sections.map(
    (s) => html`<section class="card-section">${h(s.title, s.id)}${s.blocks.map(blockHtml)}</section>`,
  )}</article>`;
}

const STANDALONE_CSS = `body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}
thead th{background:#f0f0f0}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}`;

/** A standalone HTML document (what `pricesense registry card --format html` writes). */
export function cardHtmlDocument(card: ModelCard): string {
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${card.title}</title><style>${trusted(STANDALONE_CSS)}</style></head><body><h1>${card.title}</h1>${cardFragment(card)}</body></html>`.text}\n`;
}
