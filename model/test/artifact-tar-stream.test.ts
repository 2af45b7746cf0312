/**
 * The streaming model.tar.gz reader on archives GNU tar writes (default GNU format, with
 * ././@LongLink long names; --format=pax, with PaxHeaders), read from memory and from a
 * file stream: forest.json found behind other members, truncation at the gzip and the
 * tar level refused saying where, the decompressed, compressed and per-member caps
 * enforced, and the artifact's SHA-256 still checked over every byte.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ChecksumMismatchError, InvalidArtifactError, openArtifact } from '../registry/common';
import { forestBytesOfArtifact, readTarMembers } from '../sagemaker/tar';
import { gzipBomb } from './hostile-artifacts';

const LONG_DIR = `model/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const forest = Buffer.from(JSON.stringify({ format: 'pricesense.forest', pad: randomBytes(40_000).toString('hex') }));

let dir: string;
/** `tar czf` of the given files (paths relative to a fresh directory), with extra tar options. */
async function gnuTarGz(name: string, files: Record<string, Buffer>, options: string[] = []): Promise<Buffer> {
  const root = path.join(dir, name);
  for (const [file, data] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), data);
  }
  const out = path.join(dir, `${name}.tar.gz`);
  execFileSync('tar', ['czf', out, ...options, '-C', root, ...Object.keys(files)]);
  return readFile(out);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-tar-stream-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('streaming model.tar.gz reader on GNU tar archives', () => {
  it('reads forest.json under a name longer than 100 bytes: GNU ././@LongLink and PAX path headers', async () => {
    const member = `${LONG_DIR}/forest.json`;
    expect(member.length).toBeGreaterThan(100);
    const gnu = await gnuTarGz('gnu', { [member]: forest }, ['--format=gnu']);
    expect(gunzipSync(gnu).includes('././@LongLink')).toBe(true);
    expect((await forestBytesOfArtifact(gnu, 'gnu.tar.gz')).equals(forest)).toBe(true);

    const pax = await gnuTarGz('pax', { [member]: forest, 'notes.txt': Buffer.from('hello') }, ['--format=pax']);
    expect(gunzipSync(pax).includes('PaxHeaders')).toBe(true);
    expect((await forestBytesOfArtifact(pax, 'pax.tar.gz')).equals(forest)).toBe(true);
    // From a file stream too, keeping only what is asked for.
    const kept = await readTarMembers(createReadStream(path.join(dir, 'pax.tar.gz')), 'pax.tar.gz', (name) => name.endsWith('forest.json'));
    expect(kept.map((e) => e.name)).toEqual([member]);
    expect(kept[0].data.equals(forest)).toBe(true);
  });

  it('finds forest.json behind other members, holding none of them', async () => {
    const other = randomBytes(3 * 1024 * 1024);
    const archive = await gnuTarGz('behind', { 'a-weights.bin': other, 'code/inference.py': Buffer.from('print(1)\n'), 'forest.json': forest });
    const seen: string[] = [];
    const kept = await readTarMembers(archive, 'behind.tar.gz', (name) => (seen.push(name), name === 'forest.json'));
    expect(seen).toEqual(['a-weights.bin', 'code/inference.py', 'forest.json']);
    expect(kept).toHaveLength(1);
    expect(kept[0].data.equals(forest)).toBe(true);
  });

  it('refuses a truncated archive, saying what was cut and where', async () => {
    const archive = await gnuTarGz('whole', { 'forest.json': forest });
    await expect(forestBytesOfArtifact(archive.subarray(0, archive.length >> 1), 'cut.tar.gz')).rejects.toThrow(
      /^cut\.tar\.gz: cannot decompress: the gzip stream ends early, after \d+ compressed bytes \(truncated\); expected a complete model\.tar\.gz/,
    );
    // A complete gzip stream around a cut tar (a writer that died mid-member).
    const tar = gunzipSync(archive);
    await expect(forestBytesOfArtifact(gzipSync(tar.subarray(0, 512 + 1000)), 'short.tar.gz')).rejects.toThrow(
      `short.tar.gz: truncated tar archive: member "forest.json" at byte 0 declares ${forest.length} bytes but only 1000 follow; expected a complete model.tar.gz`,
    );
    // Cut inside a member that is skipped, not held: still named.
    const skipped = gunzipSync(await gnuTarGz('skipped', { 'notes.bin': randomBytes(5000), 'forest.json': forest }));
    await expect(forestBytesOfArtifact(gzipSync(skipped.subarray(0, 512 + 100)), 'skip.tar.gz')).rejects.toThrow('skip.tar.gz: truncated tar archive: member "notes.bin" at byte 0 declares 5000 bytes but only 100 follow');
    const noEnd = 512 + Math.ceil(forest.length / 512) * 512;
    await expect(forestBytesOfArtifact(gzipSync(tar.subarray(0, noEnd)), 'noend.tar.gz')).rejects.toThrow(`noend.tar.gz: truncated tar archive: the archive ends at byte ${noEnd} without its end-of-archive blocks`);
    await expect(forestBytesOfArtifact(gzipSync(tar.subarray(0, 300)), 'hdr.tar.gz')).rejects.toThrow('hdr.tar.gz: truncated tar archive: the tar header at byte 0 is cut after 300 of its 512 bytes');
  });

  it('refuses a forest.json, or any member, larger than the cap at its header', async () => {
    const archive = await gnuTarGz('big', { 'forest.json': forest });
    await expect(forestBytesOfArtifact(archive, 'big.tar.gz', { maxBytes: 32 * 1024 })).rejects.toThrow(
      `big.tar.gz: tar entry at byte 0 declares ${forest.length} bytes, more than the 32768 bytes (MAX_ARTIFACT_BYTES) an artifact may decompress to`,
    );
    // An unrelated member: 64 MiB of zeros (64 KiB compressed) is refused before a byte of it is inflated past its header.
    const zeros = await gnuTarGz('zeros', { 'checkpoint.bin': Buffer.alloc(64 * 1024 * 1024), 'forest.json': forest });
    await expect(forestBytesOfArtifact(zeros, 'zeros.tar.gz', { maxBytes: 1024 * 1024 })).rejects.toThrow(/zeros\.tar\.gz: tar entry at byte 0 declares 67108864 bytes, more than the 1048576 bytes/);
    await expect(forestBytesOfArtifact(archive, 'in.tar.gz', { maxCompressedBytes: 1000 })).rejects.toThrow('in.tar.gz: more than 1000 bytes (MAX_ARTIFACT_BYTES, compressed): not a model artifact');
  });

  it('refuses a cap that is not a non-negative integer (a NaN from a bad memory budget would compare false and lift the bound)', async () => {
    const bomb = gzipBomb(64 * 1024, 4);
    await expect(forestBytesOfArtifact(bomb, 'bomb.tar.gz', { maxBytes: Number.NaN })).rejects.toThrow('maxBytes must be a non-negative integer, got NaN');
    await expect(forestBytesOfArtifact(bomb, 'bomb.tar.gz', { maxCompressedBytes: -1 })).rejects.toThrow('maxCompressedBytes must be a non-negative integer, got -1');
  });

  it('stops a gzip bomb at the decompressed cap', async () => {
    const bomb = gzipBomb(4 * 1024 * 1024, 64); // 256 MiB of zeros in ~260 KB
    await expect(forestBytesOfArtifact(bomb, 'bomb.tar.gz', { maxBytes: 8 * 1024 * 1024 })).rejects.toThrow('bomb.tar.gz: decompresses to more than 8,388,608 bytes (MAX_ARTIFACT_BYTES): a forest larger than this service loads, a corrupt or crafted archive (a gzip bomb), or not a model artifact');
  });

  it('openArtifact checks the SHA-256 of every byte, before any unpacking error', async () => {
    const archive = await gnuTarGz('digest', { 'notes.txt': Buffer.from('x'), 'forest.json': forest });
    const sha256 = createHash('sha256').update(archive).digest('hex');
    expect((await openArtifact({ bytes: archive, sha256, source: 'v1' })).equals(forest)).toBe(true);
    const damaged = Buffer.from(archive);
    damaged[damaged.length - 1] ^= 1; // the gzip trailer's size field: the digest differs, so does the archive
    await expect(openArtifact({ bytes: damaged, sha256, source: 'v1' })).rejects.toThrow(ChecksumMismatchError);
    // Truncated and registered as truncated: the digest matches, the archive is refused as such.
    const cut = archive.subarray(0, archive.length - 100);
    const cutSha = createHash('sha256').update(cut).digest('hex');
    await expect(openArtifact({ bytes: cut, sha256: cutSha, source: 'v2' })).rejects.toThrow(InvalidArtifactError);
    await expect(openArtifact({ bytes: cut, sha256: cutSha, source: 'v2' })).rejects.toThrow(/^v2: cannot decompress: the gzip stream ends early/);
    // Truncated but registered whole: the mismatch is what is reported.
    await expect(openArtifact({ bytes: cut, sha256, source: 'v3' })).rejects.toThrow(ChecksumMismatchError);
  });
});
