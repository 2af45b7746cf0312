import { computeMetrics, LOG_LOSS_EPSILON } from '../evaluate';

const CLASSES = ['Low', 'Medium', 'High'];

describe('evaluation metrics', () => {
  // actual    0 0 1 1 2 2
  // predicted 0 1 1 1 2 0
  const actual = [0, 0, 1, 1, 2, 2];
  const probabilities = [
    [0.7, 0.2, 0.1],
    [0.4, 0.5, 0.1],
    [0.1, 0.8, 0.1],
    [0.3, 0.6, 0.1],
    [0.05, 0.05, 0.9],
    [0.6, 0.1, 0.3],
  ].flat();
  const e = computeMetrics({ split: 'test', classes: CLASSES, actual, probabilities });

  it('computes accuracy, the confusion matrix and per-class precision/recall/F1 as by hand', () => {
    expect(e.rows).toBe(6);
    expect(e.accuracy).toBeCloseTo(4 / 6, 12);
    expect(e.confusion).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 1],
    ]);
    expect(e.perClass.Low).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(e.perClass.Medium.precision).toBeCloseTo(2 / 3, 12);
    expect(e.perClass.Medium.recall).toBe(1);
    expect(e.perClass.Medium.f1).toBeCloseTo(0.8, 12);
    expect(e.perClass.High).toEqual({ precision: 1, recall: 0.5, f1: 2 / 3, support: 2 });
    expect(e.macroF1).toBeCloseTo((0.5 + 0.8 + 2 / 3) / 3, 12);
  });

  it('computes log loss, Brier score and the calibration summary as by hand', () => {
    const pTrue = [0.7, 0.4, 0.8, 0.6, 0.9, 0.3];
    expect(e.logLoss).toBeCloseTo(-pTrue.reduce((s, p) => s + Math.log(p), 0) / 6, 12);
    // Top-class confidences 0.7 0.5 0.8 0.6 0.9 0.6, correct 1 0 1 1 1 0.
    const cal = e.calibration;
    const bin = (lower: number) => cal.bins.find((b) => Math.abs(b.lower - lower) < 1e-9)!;
    expect(bin(0.5)).toMatchObject({ count: 1, accuracy: 0 });
    expect(bin(0.6)).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(bin(0.6).meanConfidence).toBeCloseTo(0.6, 12);
    expect(bin(0.9)).toMatchObject({ count: 1, accuracy: 1 });
    const ece = (1 / 6) * 0.5 + (2 / 6) * 0.1 + (1 / 6) * 0.3 + (1 / 6) * 0.2 + (1 / 6) * 0.1;
    expect(cal.expectedCalibrationError).toBeCloseTo(ece, 12);
    expect(cal.maxCalibrationError).toBeCloseTo(0.5, 12);
    const brier0 = 0.3 ** 2 + 0.2 ** 2 + 0.1 ** 2;
    expect(cal.brierScore).toBeGreaterThan(0);
    expect(computeMetrics({ split: 's', classes: CLASSES, actual: [0], probabilities: [0.7, 0.2, 0.1] }).calibration.brierScore).toBeCloseTo(brier0, 12);
  });

  it('clips probabilities for log loss and scores a never-predicted class with precision 0', () => {
    const m = computeMetrics({ split: 's', classes: CLASSES, actual: [2, 0], probabilities: [1, 0, 0, 1, 0, 0] });
    expect(m.logLoss).toBeCloseTo(-Math.log(LOG_LOSS_EPSILON) / 2, 9);
    expect(m.perClass.High).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    // Medium neither occurs nor is predicted: it does not count in the macro average.
    expect(m.macroF1).toBeCloseTo((2 / 3 + 0) / 2, 12);
  });

  it('uses the given predictions over the argmax (hard-vote forests)', () => {
    const m = computeMetrics({ split: 's', classes: CLASSES, actual: [1], probabilities: [0.5, 0.5, 0], predicted: [1] });
    expect(m.accuracy).toBe(1);
    const argmax = computeMetrics({ split: 's', classes: CLASSES, actual: [1], probabilities: [0.5, 0.5, 0] });
    expect(argmax.accuracy).toBe(0); // ties go to the lowest class index
  });
});
