/**
 * The header row decides which column is which: columns may come in any order, unknown
 * extra columns are ignored (and reported), and a file missing any of the 22 dunnhumby
 * columns is quarantined whole, with the missing columns named.
 */
import { RAW_COLUMNS, type RawColumn } from '../schema';

export interface HeaderLayout {
  /** The file's columns in file order: a dunnhumby column, or null for an ignored extra one. */
  readonly columns: (RawColumn | null)[];
  /** Names of the extra columns, as written in the file. */
  readonly extra: string[];
  /** Same layout → same key (files with one layout are parsed in one DuckDB scan). */
  readonly key: string;
}

export type HeaderVerdict = { readonly ok: true; readonly layout: HeaderLayout } | { readonly ok: false; readonly reason: string };

/** Split a header line on commas, trimming blanks and surrounding double quotes. */
export function headerNames(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1').trim());
}

export function parseHeader(line: string): HeaderVerdict {
  const names = headerNames(line);
  const known = new Set<string>(RAW_COLUMNS);
  const columns: (RawColumn | null)[] = [];
  const extra: string[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    const upper = name.toUpperCase();
    if (known.has(upper)) {
      if (seen.has(upper)) return { ok: false, reason: `column ${upper} appears twice in the header; expected each dunnhumby column once` };
      seen.add(upper);
      columns.push(upper as RawColumn);
    } else {
      columns.push(null);
      extra.push(name);
    }
  }
  const missing = RAW_COLUMNS.filter((c) => !seen.has(c));
  if (seen.size === 0) {
    const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
    return {
      ok: false,
      reason: `the first line is not a dunnhumby transaction header (found ${JSON.stringify(shown)}; expected the column names ${RAW_COLUMNS.slice(0, 4).join(',')},… in any order)`,
    };
  }
  if (missing.length) {
    return { ok: false, reason: `missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (the header has ${names.length} columns; all 22 dunnhumby columns are required, in any order)` };
  }
  return { ok: true, layout: { columns, extra, key: columns.map((c) => c ?? '').join(',') } };
}
