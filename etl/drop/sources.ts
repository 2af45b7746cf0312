/**
 * What a raw file of a drop holds: one CSV (`.csv`), one gzip-compressed CSV (`.csv.gz`),
 * or a zip archive of CSVs (`.zip`, as such datasets are usually distributed). Each CSV
 * inside is a "part", read as a stream of its uncompressed bytes.
 *
 * Archives are read safely: member names are only labels in messages and manifests,
 * never paths on disk (what a part's bytes become is decided by the caller, under its
 * own scratch names), and every part's uncompressed size is capped.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import yauzl from 'yauzl';

export type RawFormat = 'csv' | 'csv.gz' | 'zip';

/**
 * How a raw/ key is treated: a drop file by its extension (any case); names starting with
 * '_' or '.' are the lake's own metadata (raw/_synth.json) and are skipped silently;
 * anything else is not read, and reported.
 */
export function rawFormatOf(key: string): RawFormat | 'metadata' | 'other' {
  const name = key.slice(key.lastIndexOf('/') + 1);
  if (name.startsWith('_') || name.startsWith('.')) return 'metadata';
  const lower = name.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.csv.gz')) return 'csv.gz';
  if (lower.endsWith('.zip')) return 'zip';
  return 'other';
}

export interface PartStream {
  /** The member's name inside a zip archive (as a label only), or null for the file itself. */
  readonly member: string | null;
  /** The uncompressed bytes; absent when the part cannot be read (see problem). */
  readonly stream?: Readable;
  /** Why this part cannot be read at all. */
  readonly problem?: string;
  /** With a problem: the uncompressed size the archive declares for the member. */
  readonly declaredBytes?: number;
}

export interface ArchiveListing {
  /** Members that are not CSVs (directories excluded), reported but not read. */
  readonly ignored: string[];
}

/**
 * Hand each part of a local raw file to `visit`, one at a time (the next part is opened
 * after visit resolves, so a zip's members are streamed in turn). Throws only for a
 * file that cannot be opened as its format at all (then the whole file is quarantined).
 */
export async function forEachPart(localPath: string, format: RawFormat, maxBytes: number, visit: (part: PartStream) => Promise<void>): Promise<ArchiveListing> {
  if (format === 'csv') {
    await visit({ member: null, stream: createReadStream(localPath, { highWaterMark: 1 << 20 }) });
    return { ignored: [] };
  }
  if (format === 'csv.gz') {
    await visit({ member: null, stream: gunzipped(createReadStream(localPath, { highWaterMark: 1 << 20 })) });
    return { ignored: [] };
  }
  return forEachZipMember(localPath, maxBytes, visit);
}

function gunzipped(source: Readable): Readable {
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  source.on('error', (err) => gunzip.destroy(err));
  return source.pipe(gunzip);
}

/** The part of an archive member's name a person recognises; control characters escaped. */
function label(raw: Buffer, utf8: boolean): string {
  // Without the UTF-8 flag, zip names are CP437; latin1 is exact for the ASCII names that matter.
  const text = raw.toString(utf8 ? 'utf8' : 'latin1');
  let out = '';
  for (const c of text) out += c < ' ' || c === '\u007f' ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c;
  return out;
}

/** More members than this is not a drop of weekly files: the archive is refused whole. */
export const MAX_ZIP_MEMBERS = 10_000;
/** A member that declares more than this ratio of uncompressed to compressed bytes is a zip bomb, not a CSV (text CSVs compress 5–50×). */
export const MAX_COMPRESSION_RATIO = 500;
/** The members of one archive together may expand to this many times the per-member cap. */
export const ARCHIVE_TOTAL_FACTOR = 4;

async function forEachZipMember(localPath: string, maxBytes: number, visit: (part: PartStream) => Promise<void>): Promise<ArchiveListing> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    // decodeStrings: false — names stay bytes, so yauzl never judges them as paths; we never use them as paths.
    yauzl.open(localPath, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: true }, (err, z) => (err || !z ? reject(new ZipError(err)) : resolve(z))),
  );
  const ignored: string[] = [];
  if (zip.entryCount > MAX_ZIP_MEMBERS) {
    zip.close();
    throw new ZipError(null, `it holds ${zip.entryCount} members, more than the ${MAX_ZIP_MEMBERS} a drop archive may hold; split it into several archives`);
  }
  const totalCap = maxBytes * ARCHIVE_TOTAL_FACTOR;
  let declaredTotal = 0;
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      zip.close();
      reject(err instanceof ZipError ? err : new ZipError(err as Error));
    };
    zip.on('error', fail);
    zip.on('end', () => {
      if (!failed) resolve();
    });
    zip.on('entry', (entry: yauzl.Entry) => {
      const name = label(entry.fileName as unknown as Buffer, (entry.generalPurposeBitFlag & 0x800) !== 0);
      const next = (): void => {
        if (!failed) zip.readEntry();
      };
      if (name.endsWith('/')) return next();
      // macOS Finder archives carry AppleDouble metadata (__MACOSX/…/._w1.csv): not data, whatever the extension.
      if (name.startsWith('__MACOSX/') || name.slice(name.lastIndexOf('/') + 1).startsWith('._')) {
        ignored.push(name);
        return next();
      }
      const lower = name.toLowerCase();
      const gz = lower.endsWith('.csv.gz');
      if (!lower.endsWith('.csv') && !gz) {
        ignored.push(name);
        return next();
      }
      if ((entry.generalPurposeBitFlag & 0x1) !== 0) {
        visit({ member: name, declaredBytes: entry.uncompressedSize, problem: 'the archive member is encrypted; re-create the archive without a password' }).then(next, fail);
        return;
      }
      declaredTotal += entry.uncompressedSize;
      if (declaredTotal > totalCap) {
        visit({ member: name, declaredBytes: entry.uncompressedSize, problem: `the archive's members declare more than ${totalCap} uncompressed bytes in all (${ARCHIVE_TOTAL_FACTOR} × --max-uncompressed); this and later members are not read: split the archive` }).then(next, fail);
        return;
      }
      if (entry.compressedSize > 0 && entry.uncompressedSize / entry.compressedSize > MAX_COMPRESSION_RATIO) {
        const ratio = Math.round(entry.uncompressedSize / entry.compressedSize);
        visit({ member: name, declaredBytes: entry.uncompressedSize, problem: `the archive member expands ${ratio}× (${entry.compressedSize} → ${entry.uncompressedSize} bytes), more than the ${MAX_COMPRESSION_RATIO}× a CSV does: a zip bomb or padding, not read` }).then(next, fail);
        return;
      }
      if (!gz && entry.uncompressedSize > maxBytes) {
        visit({ member: name, declaredBytes: entry.uncompressedSize, problem: `the archive member declares ${entry.uncompressedSize} uncompressed bytes, over the ${maxBytes}-byte cap (--max-uncompressed)` }).then(next, fail);
        return;
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) {
          visit({ member: name, declaredBytes: entry.uncompressedSize, problem: `the archive member cannot be decompressed (${zipReason(err)})` }).then(next, fail);
          return;
        }
        visit({ member: name, stream: gz ? gunzipped(stream) : stream }).then(next, fail);
      });
    });
    zip.readEntry();
  });
  return { ignored };
}

/** A zip archive that cannot be read at all, with a reason a person can act on. */
export class ZipError extends Error {
  constructor(cause: Error | null | undefined, reason?: string) {
    super(reason ?? `it cannot be read as a zip archive (${zipReason(cause)}); check that the upload is complete and that it is a .zip file`);
    this.name = 'ZipError';
  }
}

function zipReason(err: Error | null | undefined): string {
  const m = err?.message ?? '';
  if (/end of central directory/i.test(m)) return 'no zip directory found: truncated, or not a zip file';
  if (/compression method/i.test(m)) return 'an unsupported compression method; use deflate';
  if (/too many|size|bytes/i.test(m)) return 'its sizes do not match its directory: damaged';
  return 'damaged archive';
}

/** A stream error of a gzip or zip part, as a quarantine reason. */
export function streamFailureReason(err: Error & { code?: string }, format: RawFormat): string {
  const m = err.message ?? '';
  if (err.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(m)) return `the ${format === 'zip' ? 'archive member' : 'gzip stream'} is truncated (the compressed data ends early); re-upload the file`;
  if (err.code === 'Z_DATA_ERROR' || /incorrect header check|invalid/i.test(m)) return `the ${format === 'zip' ? 'archive member' : 'file'} is not valid ${format === 'zip' ? 'deflate' : 'gzip'} data; check that it is really compressed as its name says`;
  if (/too many bytes|too few bytes|size/i.test(m)) return 'the archive member\'s size does not match the archive directory: the archive is damaged';
  return `reading it failed (${err.code ?? 'I/O error'})`;
}
