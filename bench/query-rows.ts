import type { CommentRow, ItemRow, UserRow } from './query-app';

// The query bench's rows, the same on every run: a seeded generator, so timings compare
// across runs and machines.

/** Statuses and the share of items holding each. */
export const STATUS_SHARES = {
  closed: 0.65,
  open: 0.2,
  in_progress: 0.1,
  review: 0.03,
  blocked: 0.02,
} as const;

export const USERS = 1000;
/** Items are created over the year before this instant. */
export const NEWEST = Date.UTC(2026, 0, 1);
const YEAR_MS = 365 * 24 * 3600 * 1000;

/** The rows to load, generated up front so loading times only the store. */
export interface QueryRows {
  readonly users: readonly UserRow[];
  readonly items: readonly ItemRow[];
  readonly comments: readonly CommentRow[];
}

/** mulberry32: small, fast and good enough to spread bench data. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickStatus(x: number): string {
  let sum = 0;
  for (const [status, share] of Object.entries(STATUS_SHARES)) {
    sum += share;
    if (x < sum) return status;
  }
  return 'closed';
}

/** `items` items, as many comments (one in ten a bug report), and `USERS` owners. */
export function generateRows(items: number, seed = 1): QueryRows {
  const random = seededRandom(seed);
  const int = (below: number) => Math.floor(random() * below);
  const users = Array.from({ length: USERS }, (_, i) => ({ id: `u${i}`, name: `User ${i}` }));
  const itemRows: ItemRow[] = [];
  for (let i = 0; i < items; i++) {
    itemRows.push({
      id: `i${i}`,
      title: `Item ${i}`,
      status: pickStatus(random()),
      priority: int(5),
      ownerID: `u${int(USERS)}`,
      createdAt: new Date(NEWEST - int(YEAR_MS)),
    });
  }
  const comments: CommentRow[] = [];
  for (let i = 0; i < items; i++) {
    comments.push({
      id: `c${i}`,
      itemID: `i${int(items)}`,
      authorID: `u${int(USERS)}`,
      kind: random() < 0.1 ? 'bug' : 'note',
      createdAt: new Date(NEWEST - int(YEAR_MS)),
    });
  }
  return { users, items: itemRows, comments };
}
