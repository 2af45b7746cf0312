/**
 * What a forest file may make the loader and the scorer do. A model comes from the
 * registry, and whoever can write there must not be able to take the API down with
 * a file that is small on disk but huge (or endless) to load or score: every count
 * the loader allocates by, and every loop bound the scorer runs, is checked against
 * one of these before anything is allocated. Each refusal names its limit.
 *
 * The values are far above any forest pricesense trains (the 1M-row production forest:
 * 100 trees, depth 16, 2.9M nodes, 17 features of at most a few dozen categories).
 *
 * The header (everything but the trees: classes, features, featureStats, metrics,
 * training) is also what the loader's worker sends back to the serving thread, which
 * deserializes it and builds the encoder and the drift baseline from it while requests
 * wait: its size bounds that stall (at the limit, a 524,288-bin drift baseline: ~0.3-0.5 s on
 * a 2-core host; a trained forest's header: well under a millisecond).
 */
import { ForestFormatError } from './forest-error';

export interface ForestLimits {
  /** Bytes of the JSON document. */
  readonly documentBytes: number;
  readonly classes: number;
  /** Features: the scorer's node record holds a feature index in 9 bits, one value kept for leaves. */
  readonly features: number;
  readonly categoriesPerFeature: number;
  /** Categories over all features (the encoder keeps a map entry per category). */
  readonly categories: number;
  readonly trees: number;
  /** Nodes in one tree: the scorer's node record holds a child offset within the tree in 21 signed bits. */
  readonly nodesPerTree: number;
  readonly nodes: number;
  /** Edges on a tree's longest root-to-leaf path. */
  readonly depth: number;
  /** The sum of the trees' depths: the steps one row costs the scorer. */
  readonly pathSteps: number;
  /** 32-bit words of distinct categorical split subsets the scorer materializes. */
  readonly subsetWords: number;
  /** Nodes × classes: the loader allocates class distributions by it (up to 8 bytes a cell), whatever the document's size. */
  readonly nodeClassCells: number;
  /** JSON values outside `trees` (an object's property or an array's item is one): category names, drift baseline bins, metrics, training. */
  readonly headerValues: number;
  /** Nesting of objects and arrays outside `trees` (hashing and structured clone recurse through it). */
  readonly headerDepth: number;
  /** Characters of one string or key outside `trees` (a name: the request schema compiles feature names into code). */
  readonly headerStringChars: number;
  /** Characters of every string and key outside `trees`: what the header's clone and the encoder's maps copy. */
  readonly headerChars: number;
}

export const FOREST_LIMITS: ForestLimits = {
  documentBytes: 512 * 1024 * 1024,
  classes: 1024,
  features: 510,
  categoriesPerFeature: 65_535,
  categories: 131_072,
  trees: 10_000,
  nodesPerTree: 1 << 20,
  nodes: 1 << 25,
  depth: 1000,
  pathSteps: 1 << 20,
  subsetWords: 1 << 22,
  nodeClassCells: 1 << 25,
  headerValues: 1 << 19,
  headerDepth: 64,
  headerStringChars: 1024,
  headerChars: 1 << 24,
};

const WHAT: Record<keyof ForestLimits, string> = {
  documentBytes: 'bytes in a forest document',
  classes: 'classes',
  features: 'features',
  categoriesPerFeature: 'categories of one feature',
  categories: 'categories over all features',
  trees: 'trees',
  nodesPerTree: 'nodes in one tree',
  nodes: 'nodes in the forest',
  depth: 'depth of a tree',
  pathSteps: 'sum of the tree depths (steps to score one row)',
  subsetWords: 'words of categorical split subsets materialized (v2: the distinct subsets; v1: one per tree and catBits offset)',
  nodeClassCells: 'nodes × classes (class-distribution cells)',
  headerValues: 'JSON values outside the trees (category names, drift baselines, metrics, training)',
  headerDepth: 'nesting depth outside the trees',
  headerStringChars: 'characters of one name or string outside the trees',
  headerChars: 'characters of all names and strings outside the trees',
};

/** Throws a ForestFormatError naming the limit when `value` exceeds it. */
export function checkLimit(source: string, at: string, limit: keyof ForestLimits, value: number, limits: ForestLimits = FOREST_LIMITS): void {
  const max = limits[limit];
  if (value > max) {
    throw new ForestFormatError(
      source,
      at,
      `exceeds the limit on ${WHAT[limit]}: ${value.toLocaleString('en-US')} > ${max.toLocaleString('en-US')} (FOREST_LIMITS.${limit}, model/forest-limits.ts). ` +
        'pricesense refuses forests beyond it so that a model file cannot exhaust the memory or time of the service loading it.',
    );
  }
}

/**
 * Holds everything outside `trees` to headerValues, headerDepth, headerStringChars and
 * headerChars, walking iteratively (a document nested 10⁵ deep parses, but hashing or
 * cloning it recursively would overflow the stack) and stopping at the first limit crossed,
 * before building anything by the document's size. Runs on the parsed document before its
 * schema, digest or anything built from it.
 */
export function checkHeaderSize(source: string, doc: unknown, limits: ForestLimits = FOREST_LIMITS): void {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return;
  let values = 0;
  let chars = 0;
  const pending: { value: object; depth: number; field: string }[] = [];
  const visit = (value: unknown, depth: number, field: string, key: string | undefined): void => {
    values++;
    checkLimit(source, '', 'headerValues', values, limits);
    for (const text of [key, typeof value === 'string' ? value : undefined]) {
      if (text === undefined) continue;
      checkLimit(source, field, 'headerStringChars', text.length, limits);
      chars += text.length;
      checkLimit(source, '', 'headerChars', chars, limits);
    }
    if (value !== null && typeof value === 'object') {
      checkLimit(source, field, 'headerDepth', depth, limits);
      pending.push({ value, depth, field });
    }
  };
  for (const field in doc) if (field !== 'trees') visit((doc as Record<string, unknown>)[field], 1, field, field);
  while (pending.length > 0) {
    const { value, depth, field } = pending.pop()!;
    if (Array.isArray(value)) for (let i = 0; i < value.length; i++) visit(value[i], depth + 1, field, undefined);
    else for (const key in value) visit((value as Record<string, unknown>)[key], depth + 1, field, key);
  }
}
