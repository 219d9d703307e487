/**
 * Caps bytes held in memory (archive read-ahead, one-shot jobs' outputs); a request larger
 * than the cap waits until it is alone. To stay deadlock-free, nobody waits in acquire()
 * while holding budget that only it would give back: read-ahead uses tryAcquire() and simply
 * does not happen when the budget is spent, and outputs are given back by jobs that finish
 * on their own.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly max: number) {}

  async acquire(n: number): Promise<void> {
    if (this.tryAcquire(n)) return;
    await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
  }

  tryAcquire(n: number): boolean {
    if (this.waiters.length > 0 || !this.fits(n)) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0 && this.fits(this.waiters[0].n)) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.resolve();
    }
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.max;
  }
}
