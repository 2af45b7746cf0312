/**
 * What a forest file may make the loader and the scorer do. A model comes from the
 * registry, and whoever can write there must not be able to take the API down with
 * a file that is small on disk but huge (or endless) to load or score: every count
 * the loader allocates by, and every loop bound the scorer runs, is checked against
 * one of these before anything is allocated. Each refusal names its limit.
 *
 * The values are far above any forest pricesense trains (the 1M-row production forest:
 * 100 trees, depth 16, 2.9M nodes, 17 features of at most a few dozen categories).
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
}

export const FOREST_LIMITS: ForestLimits = {
  documentBytes: 512 * 1024 * 1024,
  classes: 1024,
  features: 510,
  categoriesPerFeature: 65_535,
  categories: 1_000_000,
  trees: 10_000,
  nodesPerTree: 1 << 20,
  nodes: 1 << 25,
  depth: 1000,
  pathSteps: 1 << 20,
  subsetWords: 1 << 22,
  nodeClassCells: 1 << 25,
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
  subsetWords: 'words of distinct categorical split subsets',
  nodeClassCells: 'nodes × classes (class-distribution cells)',
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
