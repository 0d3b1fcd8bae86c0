import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorBanners } from '../src/web/error-banners';

// The page's error banners, without a browser: expiry, dismissal, repeats, the cap.

const texts = (errors: ErrorBanners) => errors.getSnapshot().map((b) => `${b.text}×${b.count}`);

describe('ErrorBanners', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lets a banner expire after its lifetime', () => {
    const errors = new ErrorBanners(1000);
    errors.show('Refused');
    vi.advanceTimersByTime(999);
    expect(texts(errors)).toEqual(['Refused×1']);
    vi.advanceTimersByTime(1);
    expect(texts(errors)).toEqual([]);
  });

  it('counts a repeated error on its banner, and restarts its lifetime', () => {
    const errors = new ErrorBanners(1000);
    errors.show('Refused');
    vi.advanceTimersByTime(800);
    errors.show('Refused');
    errors.show('Other');
    expect(texts(errors)).toEqual(['Refused×2', 'Other×1']);
    vi.advanceTimersByTime(800);
    expect(texts(errors)).toEqual(['Refused×2', 'Other×1']);
    vi.advanceTimersByTime(200);
    expect(texts(errors)).toEqual([]);
  });

  it('dismisses a banner, and tells subscribers of each change', () => {
    const errors = new ErrorBanners(1000);
    const changes = vi.fn();
    errors.subscribe(changes);
    errors.show('a');
    errors.show('b');
    const [a] = errors.getSnapshot();
    errors.dismiss(a!.key);
    errors.dismiss(a!.key);
    expect(texts(errors)).toEqual(['b×1']);
    expect(changes).toHaveBeenCalledTimes(3);
  });

  it('keeps the four newest banners', () => {
    const errors = new ErrorBanners(1000);
    for (const text of ['1', '2', '3', '4', '5']) errors.show(text);
    expect(texts(errors)).toEqual(['2×1', '3×1', '4×1', '5×1']);
    vi.advanceTimersByTime(1000);
    expect(vi.getTimerCount()).toBe(0);
  });
});
