/**
 * No runtime import cycle among the project's modules (issue 14, "Layout": the
 * model-manager ↔ predict cycle must not come back in another form). The graph is
 * esbuild's, from a bundle of every source file: imports that are erased at runtime
 * (`import type`, type-only names) are not edges, so two modules that only share types
 * may name each other. The layer rules between folders are ESLint's (layering-lint.test.ts).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = path.join(__dirname, '..', '..');
const SOURCE_DIRS = ['api', 'cli', 'console', 'contracts', 'core', 'etl', 'infra', 'model'];

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'test' || e.name === 'node_modules' ? [] : sources(rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** The import graph esbuild sees when it bundles `files`: module → the modules it imports at runtime. */
function runtimeImports(files: string[]): Map<string, string[]> {
  const { metafile } = buildSync({
    absWorkingDir: ROOT,
    entryPoints: files,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    outdir: 'out',
    packages: 'external',
    logLevel: 'silent',
  });
  const graph = new Map<string, string[]>();
  for (const [file, input] of Object.entries(metafile.inputs)) graph.set(file, input.imports.filter((i) => !i.external).map((i) => i.path));
  return graph;
}

/** Strongly connected components of more than one module (or a module importing itself): Tarjan's, iteratively. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const edges = graph.get(v) ?? [];
      if (i < edges.length) {
        frame[1]++;
        const w = edges[i];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1 || edges.includes(v)) out.push(component.sort());
      }
    }
  }
  return out;
}

describe('import cycles', () => {
  it('finds the cycles of a graph, and only those', () => {
    const g = new Map<string, string[]>([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', ['e']],
      ['e', []],
      ['f', ['f']],
      ['g', ['e']],
    ]);
    expect(cycles(g).sort()).toEqual([['a', 'b', 'c'], ['f']]);
    expect(cycles(new Map([['x', ['y']], ['y', []]]))).toEqual([]);
  });

  it('sees a runtime import, and not a type-only one, as an edge', () => {
    const graph = runtimeImports(['api/drift.ts', 'api/metrics.ts']);
    // drift.ts reads DRIFT_THRESHOLDS from metrics.ts at runtime; metrics.ts names drift's types only.
    expect(graph.get('api/drift.ts')).toContain('api/metrics.ts');
    expect(graph.get('api/metrics.ts')).not.toContain('api/drift.ts');
  });

  it('has none among the project\'s modules', () => {
    const files = SOURCE_DIRS.flatMap(sources);
    expect(files.length).toBeGreaterThan(100);
    expect(cycles(runtimeImports(files))).toEqual([]);
  });
});
