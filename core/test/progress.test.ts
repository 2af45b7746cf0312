import { PassThrough } from 'node:stream';
import { Progress, logEvent } from '../progress';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  return { stream: pass as unknown as NodeJS.WriteStream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('progress', () => {
  const saved = process.env.PRICESENSE_PROGRESS;
  afterEach(() => {
    process.env.PRICESENSE_PROGRESS = saved;
  });

  it('writes parseable JSON lines with stage, counts, rate and ETA in json mode', () => {
    process.env.PRICESENSE_PROGRESS = 'json';
    const out = capture();
    const p = new Progress({ stage: 'ingest', total: 100, stream: out.stream, intervalMs: 0 });
    p.update(50);
    const figures = p.finish({ rejects: 2 });
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ event: 'progress', stage: 'ingest', done: 50, total: 100, unit: 'rows' });
    expect(typeof lines[0].eta_s).toBe('number');
    expect(lines[lines.length - 1]).toMatchObject({ event: 'stage_done', done: 50, rejects: 2 });
    expect(figures.count).toBe(50);
  });

  it('redraws one status line on a terminal', () => {
    process.env.PRICESENSE_PROGRESS = 'tty';
    const out = capture();
    const p = new Progress({ stage: 'train', total: 10, unit: 'trees', stream: out.stream, intervalMs: 0 });
    p.update(5);
    p.finish();
    expect(out.text()).toContain("\r\u001b[2K[train] 5/10 trees");
    expect(out.text()).toContain("ETA");
    expect(out.text().endsWith('\n')).toBe(true);
  });

  it('is silent when off', () => {
    process.env.PRICESENSE_PROGRESS = 'off';
    const out = capture();
    new Progress({ stage: 's', stream: out.stream }).finish();
    logEvent('x', {}, out.stream);
    expect(out.text()).toBe('');
  });
});
