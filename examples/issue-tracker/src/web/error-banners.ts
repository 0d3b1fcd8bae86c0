// The page's error banners as a small external store (read with useSyncExternalStore), so
// that code outside React (the client's callbacks, set up before the first render) can
// show an error too.

/** The most banners shown at once; the oldest goes first. */
const MAX_BANNERS = 5;

export interface ErrorBanner {
  readonly key: number;
  readonly text: string;
}

export class ErrorBanners {
  private banners: readonly ErrorBanner[] = [];
  private readonly listeners = new Set<() => void>();
  private nextKey = 0;

  show(text: string): void {
    this.banners = [...this.banners.slice(-(MAX_BANNERS - 1)), { key: ++this.nextKey, text }];
    this.emit();
  }

  dismiss(key: number): void {
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

  private emit() {
    for (const listener of [...this.listeners]) listener();
  }
}
