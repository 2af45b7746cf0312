/**
 * One forest load in a fresh process, as a service or a CLI meets it (nothing warmed
 * up): `node dist/bench/load-probe.js <file> <mode> <forest sha256> <file's sha256>`
 * prints one JSON line.
 *   verified   read + parse with full verification (SHA-256 of the canonical content) + pack + first prediction
 *   registry   read + the registry's artifact check (SHA-256 of the bytes) + parse as the API does
 *              (the canonical re-hash skipped) + pack + first prediction, in this thread
 *   worker     the API's path: the registry mode in a worker thread, the bytes transferred; also the
 *              longest event-loop stall of this (main) thread while the worker works, and the most of it this thread spent on-CPU
 */
import { readFile } from 'node:fs/promises';
import { StallProbe } from '../api/stall-probe';
import { loadForest, loadForestInWorker } from '../model/forest-loader';
import { openArtifact } from '../model/registry/common';

async function main(file: string, mode: string, sha256: string, artifactSha256: string): Promise<Record<string, number>> {
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const bytes = await readFile(file);
  const read = Number(process.hrtime.bigint() - t0) / 1e6;
  const probe = new StallProbe();
  probe.start();
  const artifact = { bytes, sha256: artifactSha256, source: file };
  const registryVerified = { registryVerifiedSha256: sha256 };
  const loaded =
    mode === 'worker'
      ? await loadForestInWorker({ artifact }, file, registryVerified)
      : mode === 'registry'
        ? loadForest(await openArtifact(artifact), file, registryVerified)
        : loadForest(bytes, file);
  const stall = probe.stop();
  const row: Record<string, unknown> = {};
  loaded.forest.predict(row);
  const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return {
    totalMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    readMs: read,
    parseMs: loaded.phasesMs.parse,
    packMs: loaded.phasesMs.pack,
    adoptMs: loaded.phasesMs.adopt,
    mainThreadStallMs: mode === 'worker' ? stall.maxStallMs : totalMs,
    mainThreadBusyMs: mode === 'worker' ? stall.maxBusyMs : totalMs,
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
    compiledMiB: loaded.forest.byteLength / 2 ** 20,
  };
}

main(process.argv[2], process.argv[3], process.argv[4], process.argv[5]).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
