// The page's error banners as a small external store (read with useSyncExternalStore), so
// that code outside React (the client's callbacks, set up before the first render) can
// show an error too. A banner expires on its own, can be dismissed, and an error that
// recurs while shown counts up on its banner rather than stacking a copy.

/** How long a banner stays up unless it recurs. */
export const ERROR_LIFETIME_MS = 6000;
/** The most banners shown at once; the oldest goes first. */
const MAX_BANNERS = 4;

export interface ErrorBanner {
  readonly key: number;
  readonly text: string;
  /** How many times the error was shown while its banner was up. */
  readonly count: number;
}

export class ErrorBanners {
  private banners: readonly ErrorBanner[] = [];
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly listeners = new Set<() => void>();
  private nextKey = 0;

  constructor(private readonly lifetimeMs = ERROR_LIFETIME_MS) {}

  /** Shows `text`, or counts it again on the banner already showing it. */
  show(text: string): void {
    const same = this.banners.find((b) => b.text === text);
    if (same) {
      this.banners = this.banners.map((b) => (b === same ? { ...b, count: b.count + 1 } : b));
      this.expireLater(same.key);
    } else {
      const banner = { key: ++this.nextKey, text, count: 1 };
      const kept = this.banners.slice(-(MAX_BANNERS - 1));
      for (const dropped of this.banners.slice(0, this.banners.length - kept.length)) {
        clearTimeout(this.timers.get(dropped.key));
        this.timers.delete(dropped.key);
      }
      this.banners = [...kept, banner];
      this.expireLater(banner.key);
    }
    this.emit();
  }

  dismiss(key: number): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    const left = this.banners.filter((b) => b.key !== key);
    if (left.length === this.banners.length) return;
    this.banners = left;
    this.emit();
  }

  readonly getSnapshot = (): readonly ErrorBanner[] => this.banners;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private expireLater(key: number) {
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => this.dismiss(key), this.lifetimeMs),
    );
  }

  private emit() {
    for (const listener of [...this.listeners]) listener();
  }
}
