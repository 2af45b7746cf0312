/**
 * Child process of the artifact fuzz test (model/test/artifact-fuzz.test.ts): feeds
 * hostile and mutated model.tar.gz artifacts to the SageMaker artifact reader, one
 * after another. Before each case it prints `case <i> <name>` (so a hang names its
 * case); at the end one JSON line: outcomes per kind and the process's peak RSS.
 *
 * `retained` instead measures what the reader holds (node --expose-gc --single-threaded-gc:
 * collections finish on this thread, when gc() returns, whatever the host's load): the
 * gzip bomb, and an archive with a 192 MiB member the reader skips, fed 1 KiB of
 * compressed input at a time: before each slice all garbage is collected and the bytes
 * still held outside the heap noted (`external`, which counts ArrayBuffers). Slices are
 * pulled in bursts (gunzip's write buffer: 16 MiB of output apart on Node 20, 64 MiB on
 * Node 24); a reader that takes all its input before inflating pulls every slice.
 * `buffer-path` reads the bomb and the skipped-member archive as production does, one
 * Buffer each, sampling the same way at the reader's gunzip output (see bufferPath).
 * Each mode in a process of its own.
 */
import zlib, { type ZlibOptions } from 'node:zlib';
import { UserError } from '../../core/errors';
import { mulberry32 } from '../../etl/synth/rng';
import { forestBytesOfArtifact, readTarMembers } from '../sagemaker/tar';
import { GZIP_BOMB, hostileCases, largeSkippedMember, mutated } from './hostile-artifacts';

const outcomeOf = (p: Promise<unknown>): Promise<string> => p.then(
  () => 'read',
  (err: unknown) => (err instanceof UserError ? 'refused' : String(err)),
);

interface Held {
  outcome: string;
  heldMiB: number;
  /** 1 KiB slices the reader pulled (of `slices`). */
  samples: number;
  slices: number;
}

/** Reads `archive` 1 KiB at a time, keeping forest.json only; the most it held above what was held before. */
async function heldWhileReading(archive: Buffer, gc: () => void): Promise<Held & { forest: string }> {
  const held = () => {
    gc();
    return process.memoryUsage().external;
  };
  const base = held();
  let peak = 0;
  let samples = 0;
  async function* sliced(): AsyncGenerator<Buffer> {
    for (let at = 0; at < archive.length; at += 1024) {
      peak = Math.max(peak, held() - base);
      samples++;
      yield archive.subarray(at, at + 1024);
    }
  }
  let forest = '';
  const outcome = await outcomeOf(readTarMembers(sliced(), 'archive', (name) => name === 'forest.json').then((entries) => (forest = entries.map((e) => `${e.name}: ${e.data.toString('utf8')}`).join('\n'))));
  return { outcome, heldMiB: peak / 2 ** 20, samples, slices: Math.ceil(archive.length / 1024), forest };
}

async function retained(): Promise<{ bomb: Held; skipped: Held & { forest: string } }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('retained needs node --expose-gc');
  const [[, bomb]] = hostileCases(Buffer.alloc(0), GZIP_BOMB);
  const bombHeld = await heldWhileReading(bomb, gc);
  return { bomb: bombHeld, skipped: await heldWhileReading(largeSkippedMember(Buffer.from('{"format":"pricesense.forest"}'), 192), gc) };
}

/**
 * The bomb and the skipped-member archive as production reads them, one Buffer each
 * (forestBytesOfArtifact): no input slices to sample between, so every gunzip stream the
 * reader makes samples what is held at every 16th chunk it puts out (~1 MiB). A reader
 * that inflates the whole Buffer in one call makes no stream, and so no sample.
 */
async function bufferPath(): Promise<{ bomb: Held; skipped: Held & { forest: string } }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('buffer-path needs node --expose-gc');
  let sample: (() => void) | undefined;
  const createGunzip = zlib.createGunzip;
  Object.defineProperty(zlib, 'createGunzip', {
    configurable: true,
    enumerable: true,
    value: (options?: ZlibOptions) => {
      const stream = createGunzip(options);
      const push = stream.push.bind(stream);
      let chunks = 0;
      stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (chunks++ % 16 === 0) sample?.();
        return push(chunk, encoding);
      };
      return stream;
    },
  });
  const measured = async (archive: Buffer, read: (archive: Buffer) => Promise<unknown>): Promise<Held> => {
    const held = () => {
      gc();
      return process.memoryUsage().external;
    };
    const base = held();
    let peak = 0;
    let samples = 0;
    sample = () => {
      peak = Math.max(peak, held() - base);
      samples++;
    };
    const outcome = await outcomeOf(read(archive));
    sample = undefined;
    return { outcome, heldMiB: peak / 2 ** 20, samples, slices: 0 };
  };
  const [[, bomb]] = hostileCases(Buffer.alloc(0), GZIP_BOMB);
  const bombHeld = await measured(bomb, (a) => forestBytesOfArtifact(a, 'bomb'));
  const forestText = '{"format":"pricesense.forest"}';
  let forest = '';
  const skipped = await measured(largeSkippedMember(Buffer.from(forestText), 192), async (a) => (forest = (await forestBytesOfArtifact(a, 'skipped')).toString('utf8')));
  return { bomb: bombHeld, skipped: { ...skipped, forest } };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'retained' || process.argv[2] === 'buffer-path') {
    process.stdout.write(`${JSON.stringify(process.argv[2] === 'retained' ? await retained() : await bufferPath())}\n`);
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
