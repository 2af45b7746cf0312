/**
 * One writer per lake: the ETL holds the lake's lease from before it reads the current
 * silver/gold until after its last commit.
 *
 * The lease is a sequence of generation objects `tmp/etl-lease/<12-digit n>.json`; the
 * highest n is the lease's state. Taking the lease means creating generation n+1 with
 * Lake.writeIfAbsent (link(2) locally, PutObject If-None-Match: * on S3), which exactly
 * one contender can do, and only when generation n is released or expired. The holder
 * renews its own generation object every ttl/4 (a plain overwrite: nobody else writes
 * it) and, right before each commit point, checks that no newer generation exists.
 *
 * Expiry uses the holder's wall clock (renewedAt + ttl), so hosts sharing a lake need
 * clocks in sync to well within the ttl. A lease held by a process that no longer runs,
 * judged from the same host, boot and PID namespace (pid gone, or reused by a process that
 * started at another time), is expired at once; from anywhere else only the ttl counts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { checkSeconds, type SecondsBounds } from '../../core/durations';
import { UserError } from '../../core/errors';
import type { Lake } from './types';

export const LEASE_PREFIX = 'tmp/etl-lease/';
export const LEASE_FORMAT = 'pricesense.etl-lease/1';
export const DEFAULT_LEASE_TTL_SECONDS = 120;
/** A run renews its lease every ttl/4: a week at most, so a killed run's lease is taken over within a week. */
export const LEASE_TTL_BOUNDS: SecondsBounds = { min: 1, max: 7 * 86_400, integer: true };
/** How long a run waits for another holder. */
export const LEASE_WAIT_BOUNDS: SecondsBounds = { min: 0, max: 7 * 86_400, integer: true };

export interface LeaseHolder {
  readonly host: string;
  readonly bootId: string | null;
  /**
   * The PID namespace (`/proc/self/ns/pid` link text): containers on one host share its
   * host name (hostNetwork pods) and boot id but not their PIDs, so a pid says something
   * only within the same namespace.
   */
  readonly pidNamespace?: string | null;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): tells a reused pid apart. */
  readonly processStart?: string | null;
  readonly pid: number;
  readonly user: string;
  readonly command: string;
}

interface LeaseRecord {
  readonly format: typeof LEASE_FORMAT;
  readonly run: string;
  readonly holder: LeaseHolder;
  readonly startedAt: string;
  readonly renewedAt: string;
  readonly ttlSeconds: number;
  readonly released: boolean;
  /** Lake keys of scratch space the run uses: a run taking over an expired lease removes it. */
  readonly scratch: string[];
}

export interface LeaseOptions {
  /** Seconds without renewal after which the lease counts as abandoned (default 120). */
  readonly ttlSeconds?: number;
  /** How long to wait for a lease held by another run, in seconds (default 0: refuse at once). */
  readonly waitSeconds?: number;
  /** Run id recorded in the lease. */
  readonly run?: string;
  /** Scratch keys of this run (see LeaseRecord.scratch). */
  readonly scratch?: string[];
  /** Called when the lease is taken over from an expired holder, with a description of it. */
  readonly onTakeover?: (previous: string) => void;
  /** Called while waiting, with a description of the holder. */
  readonly onWait?: (holder: string) => void;
}

export class LeaseHeldError extends UserError {
  constructor(message: string) {
    super(message, 'conflict');
    this.name = 'LeaseHeldError';
  }
}

const GEN_DIGITS = 12;
/** Reads of a lease record before it is called unreadable (see readRecord). */
const RECORD_READ_ATTEMPTS = 3;
const keyOf = (gen: number): string => `${LEASE_PREFIX}${String(gen).padStart(GEN_DIGITS, '0')}.json`;

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command, which may hold spaces). */
function processStart(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function thisHolder(): LeaseHolder {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (some containers): the pid and host still identify the run
  }
  return { host: os.hostname(), bootId: bootId(), pidNamespace: pidNamespace(), processStart: processStart('self'), pid: process.pid, user, command: process.argv.slice(1).join(' ').slice(0, 300) };
}

function describeHolder(r: LeaseRecord): string {
  return `${r.holder.user}@${r.holder.host} pid ${r.holder.pid} (run ${r.run}), started ${r.startedAt}, last renewed ${r.renewedAt}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the record no longer holds the lake, or undefined if it does. */
function vacancy(r: LeaseRecord, now: number): string | undefined {
  if (r.released) return 'released';
  const expiresAt = Date.parse(r.renewedAt) + r.ttlSeconds * 1000;
  if (!(now <= expiresAt)) return `expired at ${new Date(expiresAt).toISOString()} (not renewed for ${r.ttlSeconds} s)`;
  const me = thisHolder();
  // Judged only from inside the holder's own PID namespace on the same boot of the same host.
  const sameNamespace = r.holder.host === me.host && r.holder.bootId != null && r.holder.bootId === me.bootId && r.holder.pidNamespace != null && r.holder.pidNamespace === me.pidNamespace;
  if (!sameNamespace || r.holder.pid === me.pid) return undefined;
  if (!pidAlive(r.holder.pid)) return `its process (pid ${r.holder.pid} on this host) is no longer running`;
  const start = processStart(r.holder.pid);
  if (r.holder.processStart != null && start !== null && start !== r.holder.processStart) {
    return `its process (pid ${r.holder.pid} on this host) is no longer running (the pid now belongs to another process)`;
  }
  return undefined;
}

async function generations(lake: Lake): Promise<number[]> {
  const gens: number[] = [];
  for (const o of await lake.list(LEASE_PREFIX)) {
    const m = /^(\d+)\.json$/.exec(o.key.slice(LEASE_PREFIX.length));
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

/** The record of a generation, or undefined when it was deleted since it was listed (a newer holder cleared it). */
async function readRecord(lake: Lake, gen: number): Promise<LeaseRecord | undefined> {
  const key = keyOf(gen);
  // The holder renews this object in place every few seconds: a read that fails while it is being
  // replaced (some S3-compatible stores do not replace objects atomically) is tried again before
  // the object is called unreadable.
  for (let attempt = 0; ; attempt++) {
    try {
      const r = JSON.parse((await lake.read(key)).toString('utf8')) as LeaseRecord;
      if (r.format !== LEASE_FORMAT) throw new Error(`format ${String(r.format)}`);
      return r;
    } catch (err) {
      if (!(await lake.exists(key))) return undefined;
      if (attempt < RECORD_READ_ATTEMPTS - 1) {
        await sleep(100 * 2 ** attempt, Infinity);
        continue;
      }
      throw new UserError(
        `the lease object ${lake.uri(key)} is unreadable (${(err as Error).message}); if no ETL run is writing this lake, delete it and rerun`,
      );
    }
  }
}

export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private lost: string | undefined;
  private record: LeaseRecord;

  private constructor(
    readonly lake: Lake,
    readonly generation: number,
    record: LeaseRecord,
  ) {
    this.record = record;
  }

  get key(): string {
    return keyOf(this.generation);
  }

  /** Take the lake's lease, waiting up to waitSeconds for another holder; LeaseHeldError otherwise. */
  static async acquire(lake: Lake, options: LeaseOptions = {}): Promise<Lease> {
    const ttlSeconds = checkSeconds('the lease TTL (--lease-ttl)', options.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS, LEASE_TTL_BOUNDS);
    const deadline = Date.now() + checkSeconds('the wait for the lease (--wait)', options.waitSeconds ?? 0, LEASE_WAIT_BOUNDS) * 1000;
    const run = options.run ?? `${process.pid}-${randomBytes(4).toString('hex')}`;
    for (let attempt = 0; ; attempt++) {
      const gens = await generations(lake);
      const top = gens.at(-1);
      let previous: LeaseRecord | undefined;
      let takeover: string | undefined;
      if (top !== undefined) {
        previous = await readRecord(lake, top);
        if (previous === undefined) continue; // another run took a newer generation between list and read: look again
        const why = vacancy(previous, Date.now());
        if (why === undefined) {
          const holder = describeHolder(previous);
          if (Date.now() >= deadline) {
            const expires = new Date(Date.parse(previous.renewedAt) + previous.ttlSeconds * 1000).toISOString();
            throw new LeaseHeldError(
              `another ETL run is writing ${lake.root}: ${holder}. Wait for it to finish, or rerun with --wait <seconds>; ` +
                `if that run was killed, its lease expires at ${expires} (the lease is ${lake.uri(keyOf(top))})`,
            );
          }
          options.onWait?.(holder);
          await sleep(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)), deadline);
          continue;
        }
        if (!previous.released) takeover = `${describeHolder(previous)}: ${why}`;
      }
      const gen = (top ?? 0) + 1;
      const now = new Date().toISOString();
      const record: LeaseRecord = {
        format: LEASE_FORMAT,
        run,
        holder: thisHolder(),
        startedAt: now,
        renewedAt: now,
        ttlSeconds,
        released: false,
        scratch: options.scratch ?? [],
      };
      if (!(await lake.writeIfAbsent(keyOf(gen), `${JSON.stringify(record, null, 2)}\n`))) continue; // lost the race: look again
      const lease = new Lease(lake, gen, record);
      // Older generations are history; the abandoned run's scratch is debris we may now remove.
      for (const g of gens) await lake.delete(keyOf(g));
      if (takeover !== undefined && previous) {
        for (const prefix of previous.scratch) for (const o of await lake.list(prefix)) await lake.delete(o.key);
        options.onTakeover?.(takeover);
      }
      lease.startRenewing();
      return lease;
    }
  }

  /** When the last renewal succeeded (monotonic ms): a failed renewal is retried, and only counts once the ttl has passed since. */
  private renewedAt = performance.now();

  private startRenewing(): void {
    const every = Math.max(50, (this.record.ttlSeconds * 1000) / 4);
    this.timer = setInterval(() => {
      this.renew().catch((err: unknown) => this.renewalFailed(err));
    }, every);
    this.timer.unref();
  }

  private renewalFailed(err: unknown): void {
    const since = performance.now() - this.renewedAt;
    if (since > this.record.ttlSeconds * 1000) {
      this.lost ??= `renewing the lease failed for ${Math.round(since / 1000)} s, longer than its ${this.record.ttlSeconds} s ttl: ${(err as Error).message}`;
    }
  }

  private async renew(): Promise<void> {
    if (this.lost) return;
    const gens = await generations(this.lake);
    if (gens.at(-1) !== this.generation) {
      this.lost = `the lease was taken over (generation ${gens.at(-1) ?? 'none'} replaced ${this.generation})`;
      return;
    }
    const started = performance.now();
    this.record = { ...this.record, renewedAt: new Date().toISOString() };
    await this.lake.write(this.key, `${JSON.stringify(this.record, null, 2)}\n`);
    this.renewedAt = started;
  }

  /**
   * Throws unless this run still holds the lease; renews it first (retrying a failed
   * renewal a few times), so that the commit that follows has a full ttl. Called right
   * before every commit point.
   */
  async assertHeld(): Promise<void> {
    for (let attempt = 0; !this.lost; attempt++) {
      try {
        await this.renew();
        break;
      } catch (err) {
        if (attempt >= 3) {
          this.lost = `renewing the lease before the commit failed ${attempt + 1} times: ${(err as Error).message}`;
          break;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
    if (this.lost) {
      throw new UserError(
        `this ETL run lost the lease on ${this.lake.root} (${this.lost}), so it did not commit: another run may be writing the lake. ` +
          'Nothing of this run was published; rerun once the other run has finished (raise the lease ttl if this run was merely slow)',
      );
    }
  }

  /** Give the lake back (best effort: an unreleased lease expires by itself). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.lost) return;
    try {
      const gens = await generations(this.lake);
      if (gens.at(-1) !== this.generation) return;
      this.record = { ...this.record, renewedAt: new Date().toISOString(), released: true };
      await this.lake.write(this.key, `${JSON.stringify(this.record, null, 2)}\n`);
    } catch {
      // The lease expires after its ttl anyway.
    }
  }
}

function sleep(ms: number, deadline: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(10, Math.min(ms, deadline - Date.now()))));
}
