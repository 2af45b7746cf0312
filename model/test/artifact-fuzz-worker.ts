/**
 * Child process of the artifact fuzz test (model/test/artifact-fuzz.test.ts): feeds
 * hostile and mutated model.tar.gz artifacts to the SageMaker artifact reader, one
 * after another. Before each case it prints `case <i> <name>` (so a hang names its
 * case); at the end one JSON line: outcomes per kind and the process's peak RSS.
 *
 * `retained` instead reads the gzip bomb alone, fed to the reader 1 KiB of compressed
 * input at a time, and before each slice collects all garbage (node --expose-gc
 * --single-threaded-gc, so the collection is finished when gc() returns) and notes the
 * bytes still held in ArrayBuffers and outside the heap: what the reader holds, sampled
 * ~every MiB of output, whatever the host's load (a peak RSS depends on when the
 * collector happened to run).
 */
import { UserError } from '../../core/errors';
import { mulberry32 } from '../../etl/synth/rng';
import { forestBytesOfArtifact, readTarMembers } from '../sagemaker/tar';
import { GZIP_BOMB, hostileCases, mutated } from './hostile-artifacts';

/** What the reader holds at most while reading the gzip bomb, bytes above what was held before it. */
async function retainedByBomb(): Promise<{ refusal: string; retainedMiB: number; samples: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('retained needs node --expose-gc');
  const [[, bomb]] = hostileCases(Buffer.alloc(0), GZIP_BOMB);
  const held = () => {
    gc();
    const m = process.memoryUsage();
    return m.arrayBuffers + m.external;
  };
  const base = held();
  let peak = 0;
  let samples = 0;
  async function* sliced(): AsyncGenerator<Buffer> {
    for (let at = 0; at < bomb.length; at += 1024) {
      peak = Math.max(peak, held() - base);
      samples++;
      yield bomb.subarray(at, at + 1024);
    }
  }
  const refusal = await readTarMembers(sliced(), 'bomb', () => true).then(
    () => 'read',
    (err: unknown) => (err instanceof UserError ? 'refused' : String(err)),
  );
  return { refusal, retainedMiB: peak / 2 ** 20, samples };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'retained') {
    process.stdout.write(`${JSON.stringify(await retainedByBomb())}\n`);
    return;
  }
  const count = Number(process.argv[2] ?? 2000);
  const forest = Buffer.from(JSON.stringify({ format: 'pricesense.forest', pad: 'x'.repeat(3000) }));
  const outcomes: Record<string, number> = { ok: 0, refused: 0 };
  const unexpected: string[] = [];
  const run = async (i: number, name: string, bytes: Buffer) => {
    process.stdout.write(`case ${i} ${name}\n`);
    try {
      await forestBytesOfArtifact(bytes, `case ${i}`);
      outcomes.ok++;
    } catch (err) {
      if (err instanceof UserError) outcomes.refused++;
      else unexpected.push(`case ${i} (${name}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  };
  const hostile = hostileCases(forest);
  const named: Record<string, string> = {};
  for (const [i, [name, bytes]] of hostile.entries()) {
    const before = outcomes.refused;
    await run(i, name, bytes);
    named[name] = outcomes.refused > before ? 'refused' : 'other';
  }
  const rng = mulberry32(20240601);
  for (let i = 0; i < count; i++) await run(hostile.length + i, 'mutation', mutated(rng, forest));
  process.stdout.write(`${JSON.stringify({ outcomes, named, unexpected: unexpected.slice(0, 20), maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

void main();
