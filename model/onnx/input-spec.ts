/**
 * The description of an ONNX model's input columns that an import needs when the file
 * does not carry it: the form a team writes for a scikit-learn model (and the form an
 * exported model carries in metadata_props):
 *
 *   { "features": ["SPEND", ..., "STORE_FORMAT"],
 *     "categorical_codes": { "STORE_FORMAT": ["LS", "MS", "SS", "XLS"] },
 *     "missing_encoded_as": -1,            // or "NaN" / null / absent: NaN
 *     "classes": ["High", "Low", "Medium"] // optional: labels for integer class ids
 *     "class_ids": [0, 1, 2] }             // optional: the ids those labels stand for
 *
 * A categorical column holds the category's code (its index in the list). Other keys
 * (e.g. a fixture's notes) are ignored.
 */
import { UserError } from '../../core/errors';

/** Most categories one categorical feature may list. */
export const MAX_CATEGORIES = 65_536;

export interface InputSpec {
  readonly features: string[];
  readonly categoricalCodes: Record<string, string[]>;
  /** The number a missing or unknown value is encoded as, or NaN. */
  readonly missingEncodedAs: number;
  readonly classes?: string[];
  readonly classIds?: number[];
}

function bad(source: string, problem: string): never {
  throw new UserError(`${source}: invalid feature spec: ${problem}`);
}

function stringList(value: unknown, source: string, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) bad(source, `${what} must be a non-empty array of strings`);
  const seen = new Set<string>();
  for (const v of value as string[]) {
    if (seen.has(v)) bad(source, `${what} lists ${JSON.stringify(v)} twice`);
    seen.add(v);
  }
  return value as string[];
}

/** Validates a parsed spec document; `source` names it in errors. */
export function parseInputSpec(doc: unknown, source: string): InputSpec {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) bad(source, 'expected a JSON object with "features" (and optionally "categorical_codes", "missing_encoded_as", "classes")');
  const d = doc as Record<string, unknown>;
  const features = stringList(d.features, source, '"features"');
  const codes: Record<string, string[]> = {};
  if (d.categorical_codes !== undefined && d.categorical_codes !== null) {
    if (typeof d.categorical_codes !== 'object' || Array.isArray(d.categorical_codes)) bad(source, '"categorical_codes" must be an object: feature name → list of categories (code = index)');
    for (const [name, list] of Object.entries(d.categorical_codes as Record<string, unknown>)) {
      if (!features.includes(name)) bad(source, `"categorical_codes" names ${JSON.stringify(name)}, which is not in "features"`);
      codes[name] = stringList(list, source, `"categorical_codes"."${name}"`);
      // Each split on the feature costs C/32 words and O(C) work on import: bounded, as the file controls C.
      if (codes[name].length > MAX_CATEGORIES) bad(source, `"categorical_codes"."${name}" lists ${codes[name].length.toLocaleString('en-US')} categories; at most ${MAX_CATEGORIES.toLocaleString('en-US')} are accepted (a column with more values is an identifier, not a category)`);
    }
  }
  const m = d.missing_encoded_as;
  let missing = NaN;
  if (typeof m === 'number' && Number.isFinite(m)) missing = m;
  else if (!(m === undefined || m === null || (typeof m === 'string' && m.toLowerCase() === 'nan'))) bad(source, `"missing_encoded_as" must be a number, "NaN" or absent, got ${JSON.stringify(m)}`);
  const classes = d.classes === undefined ? undefined : stringList(d.classes, source, '"classes"');
  let classIds: number[] | undefined;
  if (d.class_ids !== undefined) {
    if (!Array.isArray(d.class_ids) || !d.class_ids.every((v) => Number.isInteger(v)) || d.class_ids.length !== (classes?.length ?? -1)) {
      bad(source, '"class_ids" must be an array of integers, one per entry of "classes"');
    }
    classIds = d.class_ids as number[];
  }
  return { features, categoricalCodes: codes, missingEncodedAs: missing, classes, classIds };
}
