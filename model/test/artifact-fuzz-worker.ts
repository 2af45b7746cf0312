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
import { hostileCases, largeSkippedMember, mutated, SKIPPED_MEMBER_FOREST, twoGibGzipBomb } from './hostile-artifacts';

/** 'read', 'refused' (a UserError: the reader's clear refusal), or anything else as its error's text. */
const outcomeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'read',
    (err: unknown) => (err instanceof UserError ? 'refused' : String(err)),
  );

export interface Held {
  outcome: string;
  /** The most held above the baseline at any sample, MiB. */
  heldMiB: number;
  /** Still held a few turns after the read ended, above the baseline, MiB. */
  afterMiB: number;
  /** Samples taken: 1 KiB slices pulled (of `slices`), or ~1 MiB steps of gunzip output (`slices` 0). */
  samples: number;
  slices: number;
  /** forest.json's text, when the read returns it. */
  forest: string;
}

type Gc = () => void;

/** Bytes held outside the heap once all garbage is collected. */
function heldNow(gc: Gc): number {
  gc();
  return process.memoryUsage().external;
}

/** A few turns of the event loop: what a finished read still has in flight (a zlib write) settles first. */
async function settled(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs `read` between a baseline and an end measurement, both after the loop settles (so
 * one read's leftovers never hide the next read's holding); `read` gets the sampler.
 */
async function measured(gc: Gc, read: (sample: () => void) => Promise<string>, slices: number): Promise<Held> {
  await settled();
  const base = heldNow(gc);
  let peak = 0;
  let samples = 0;
  let forest = '';
  const outcome = await outcomeOf(
    read(() => {
      peak = Math.max(peak, heldNow(gc) - base);
      samples++;
    }).then((text) => (forest = text)),
  );
  await settled();
  const after = heldNow(gc) - base;
  return { outcome, heldMiB: peak / 2 ** 20, afterMiB: after / 2 ** 20, samples, slices, forest };
}

/** Reads `archive` 1 KiB at a time through readTarMembers, keeping forest.json only, sampling before each slice. */
function heldWhileReading(archive: Buffer, gc: Gc): Promise<Held> {
  const slices = Math.ceil(archive.length / 1024);
  return measured(gc, async (sample) => {
    async function* sliced(): AsyncGenerator<Buffer> {
      for (let at = 0; at < archive.length; at += 1024) {
        sample();
        yield archive.subarray(at, at + 1024);
      }
    }
    const entries = await readTarMembers(sliced(), 'archive', (name) => name === 'forest.json');
    return entries.map((e) => `${e.name}: ${e.data.toString('utf8')}`).join('\n');
  }, slices);
}

function gcOrThrow(mode: string): Gc {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (gc === undefined) throw new Error(`${mode} needs node --expose-gc`);
  return gc;
}

/** The gzip bomb, then the archive with a 192 MiB member to skip, each read by `read`. */
async function eachArchive(read: (archive: Buffer) => Promise<Held>): Promise<{ bomb: Held; skipped: Held }> {
  const bomb = await read(twoGibGzipBomb());
  return { bomb, skipped: await read(largeSkippedMember(Buffer.from(SKIPPED_MEMBER_FOREST), 192)) };
}

function retained(): Promise<{ bomb: Held; skipped: Held }> {
  const gc = gcOrThrow('retained');
  return eachArchive((archive) => heldWhileReading(archive, gc));
}

/**
 * The bomb and the skipped-member archive as production reads them, one Buffer each
 * (forestBytesOfArtifact): no input slices to sample between, so every gunzip stream the
 * reader makes samples what is held at every MiB it puts out. A reader that inflates the
 * whole Buffer in one call, or builds its stream other than by zlib.createGunzip, makes
 * no sample, which the test refuses.
 */
function bufferPath(): Promise<{ bomb: Held; skipped: Held }> {
  const gc = gcOrThrow('buffer-path');
  let sample: (() => void) | undefined;
  const createGunzip = zlib.createGunzip;
  Object.defineProperty(zlib, 'createGunzip', {
    configurable: true,
    enumerable: true,
    value: (options?: ZlibOptions) => {
      const stream = createGunzip(options);
      const push = stream.push.bind(stream);
      let sinceSample = Infinity;
      stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (sinceSample >= 2 ** 20) {
          sample?.();
          sinceSample = 0;
        }
        if (chunk instanceof Uint8Array) sinceSample += chunk.byteLength;
        return push(chunk, encoding);
      };
      return stream;
    },
  });
  return eachArchive((archive) =>
    measured(gc, async (s) => {
      sample = s;
      try {
        return (await forestBytesOfArtifact(archive, 'archive')).toString('utf8');
      } finally {
        sample = undefined;
      }
    }, 0),
  );
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
    const outcome = await outcomeOf(forestBytesOfArtifact(bytes, `case ${i}`));
    if (outcome === 'read') outcomes.ok++;
    else if (outcome === 'refused') outcomes.refused++;
    else unexpected.push(`case ${i} (${name}): ${outcome}`);
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
