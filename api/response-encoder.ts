/**
 * The single-row /predict response, assembled from strings precomputed per model (keys,
 * label heads, the model reference per role): a prediction costs a few number-to-string
 * conversions and one concatenation — no intermediate objects and no JSON.stringify walk.
 * The result is byte for byte JSON.stringify of
 * `{label, probabilities: {class: p, ...}, unknownCategories?: [...], model: {name, version, sha256, role}}`.
 */
import type { Prediction } from '../model/walker';

export interface EncoderModel {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  readonly classes: readonly string[];
}

export class ResponseEncoder {
  /** Per class k: `{"label":"<class k>","probabilities":{"<class 0>":`. */
  private readonly heads: string[];
  /** Per class k >= 1: `,"<class k>":`. */
  private readonly keys: string[];
  /** Per role: `,"model":{...}}`. */
  private readonly tails: Record<'champion' | 'canary', string>;

  constructor(model: EncoderModel) {
    const classes = model.classes;
    this.heads = classes.map((c) => `{"label":${JSON.stringify(c)},"probabilities":{${JSON.stringify(classes[0])}:`);
    this.keys = classes.map((c) => `,${JSON.stringify(c)}:`);
    const tail = (role: string) => `,"model":${JSON.stringify({ name: model.name, version: model.version, sha256: model.sha256, role })}}`;
    this.tails = { champion: tail('champion'), canary: tail('canary') };
  }

  single(p: Prediction, role: 'champion' | 'canary', unknown: readonly string[] | undefined): string {
    const probabilities = p.probabilities;
    // Probabilities are finite, where String(x) and JSON.stringify(x) agree.
    let json = this.heads[p.classIndex] + String(probabilities[0]);
    for (let k = 1; k < probabilities.length; k++) json += this.keys[k] + String(probabilities[k]);
    json += '}';
    if (unknown !== undefined) json += `,"unknownCategories":${JSON.stringify(unknown)}`;
    return json + this.tails[role];
  }
}
