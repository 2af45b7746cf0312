/**
 * A result reused for a short while. The console's pages read the whole registry listing
 * (on SageMaker: every package, a Describe per version and every audit object) and scrape
 * the serving API; a page view per person per few seconds must not multiply that work.
 * Callers asking at once share one call in flight; a failure is kept as briefly as a
 * success (an unreachable API must not be re-scraped, with its timeout, for every page).
 */
export class Reused<T> {
  private current: { started: number; value: Promise<T> } | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly load: () => Promise<T>,
  ) {}

  get(): Promise<T> {
    const now = Date.now();
    if (!this.current || now - this.current.started >= this.ttlMs) {
      const value = this.load();
      value.catch(() => undefined); // observed by the callers; kept only until the TTL ends
      this.current = { started: now, value };
    }
    return this.current.value;
  }

  /** After a change made through this console: the next caller reads afresh. */
  invalidate(): void {
    this.current = undefined;
  }
}
