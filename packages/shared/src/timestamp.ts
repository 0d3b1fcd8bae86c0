// Timestamps as Postgres holds them: to the microsecond, with ±infinity, and years from
// 4714 BC to 294276 AD (dates to 5874897 AD). A `Date` stops at the millisecond and at
// 275760 AD, and has neither infinity nor a text form Postgres reads for years outside
// 1–9999, so rows carry a `Timestamp`: a `Date` (every Date method works, to the
// millisecond) that also keeps the microseconds past it, whether it is ±infinity, and how
// far past the last Date an instant lies. See SEMANTICS.md, "Timestamps".

const MAX_DATE_MS = 8.64e15;
// The Gregorian calendar repeats every 400 years, which are exactly 146097 days: an
// instant past the last Date is written and read 400·n years earlier, where a Date holds it.
const CYCLE_MS = 146097n * 86_400_000n;

/**
 * A `Date` with Postgres's precision: `microsecond` holds the 0–999 microseconds past
 * `getTime()`'s millisecond, and `infinity` says whether the value is Postgres's
 * `infinity` (1) or `-infinity` (-1), whose `getTime()` is the latest or earliest instant a
 * Date can hold. An instant later than any Date (after 275760-09-13, which Postgres holds
 * up to 294276 AD, and dates to 5874897 AD) has `getTime()` 8.64e15, the last Date, and
 * `beyond` the milliseconds past it (0 for every other instant). `toISOString()` (and so
 * `toJSON()` and `JSON.stringify`) writes the text Postgres reads back exactly.
 *
 * @example
 * const at = parseTimestamp('2026-01-01 10:00:00.123456+00');
 * at.getTime() % 1000; // 123
 * at.microsecond; // 456
 * at.toISOString(); // '2026-01-01T10:00:00.123456Z'
 */
export class Timestamp extends Date {
  /** Postgres's `infinity` and `-infinity`. */
  static readonly POSITIVE_INFINITY: Timestamp = new Timestamp(0, 0, 1);
  static readonly NEGATIVE_INFINITY: Timestamp = new Timestamp(0, 0, -1);

  readonly microsecond: number;
  readonly infinity: -1 | 0 | 1;
  /** Milliseconds past `getTime()` (then 8.64e15) of an instant later than any Date. */
  readonly beyond: number;

  constructor(milliseconds: number, microsecond = 0, infinity: -1 | 0 | 1 = 0, beyond = 0) {
    const far = infinity === 0 && beyond > 0;
    super(infinity === 0 ? (far ? MAX_DATE_MS : milliseconds) : infinity * MAX_DATE_MS);
    this.microsecond = infinity === 0 ? microsecond : 0;
    this.infinity = infinity;
    this.beyond = far ? beyond : 0;
  }

  override toISOString(): string {
    return formatTimestamp(this);
  }
}

/** The microseconds past the millisecond: a plain Date has none. */
export const microsecondOf = (date: Date): number =>
  date instanceof Timestamp ? date.microsecond : 0;

/** ±Infinity for Postgres's infinities, else the Date's milliseconds. */
export const millisecondsOf = (date: Date): number =>
  date instanceof Timestamp && date.infinity !== 0 ? date.infinity * Infinity : date.getTime();

/** The milliseconds past the last Date of an instant later than any Date can hold. */
export const beyondOf = (date: Date): number => (date instanceof Timestamp ? date.beyond : 0);

/**
 * Orders two instants as Postgres does: by millisecond (those past the last Date too), then
 * microsecond; -infinity before and infinity after every other.
 *
 * @example
 * compareInstants(new Date(0), parseTimestamp('1970-01-01 00:00:00.000001Z')); // -1
 */
export function compareInstants(a: Date, b: Date): number {
  const x = millisecondsOf(a);
  const y = millisecondsOf(b);
  if (x !== y) return x < y ? -1 : 1;
  const m = beyondOf(a);
  const n = beyondOf(b);
  if (m !== n) return m < n ? -1 : 1;
  const p = microsecondOf(a);
  const q = microsecondOf(b);
  return p === q ? 0 : p < q ? -1 : 1;
}

/**
 * One key per instant: equal under `compareInstants` exactly when the keys are equal
 * (`SameValueZero`). The milliseconds alone when there is nothing past them.
 *
 * @example
 * instantKey(new Date(5)) === instantKey(parseTimestamp('1970-01-01 00:00:00.005Z')); // true
 */
export function instantKey(date: Date): number | string {
  const micro = microsecondOf(date);
  const beyond = beyondOf(date);
  if (beyond !== 0) return `${millisecondsOf(date)}>${beyond}+${micro}`;
  return micro === 0 ? millisecondsOf(date) : `${millisecondsOf(date)}+${micro}`;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/**
 * The text Postgres reads as this instant, to the microsecond: ISO 8601 in UTC (as
 * `Date.toISOString` writes it when there are no microseconds), with
 * `BC` for years before 1 and five or more digits after 9999 (where `Date.toISOString`
 * writes `-000044` and `+010000`, which Postgres refuses), or `infinity` / `-infinity`.
 *
 * @example
 * formatTimestamp(new Date(Date.UTC(-43, 2, 15))); // '0044-03-15T00:00:00.000Z BC'
 */
export function formatTimestamp(date: Date): string {
  if (date instanceof Timestamp && date.infinity !== 0) {
    return date.infinity > 0 ? 'infinity' : '-infinity';
  }
  if (Number.isNaN(date.getTime())) throw new RangeError('Invalid time value');
  const micro = microsecondOf(date);
  const beyond = beyondOf(date);
  // Past the last Date: the same day and time 400·n years earlier, where a Date holds it.
  const cycles = beyond === 0 ? 0n : BigInt(Math.ceil(beyond / Number(CYCLE_MS)));
  const at =
    cycles === 0n
      ? date
      : new Date(Number(BigInt(MAX_DATE_MS) + BigInt(beyond) - cycles * CYCLE_MS));
  const year = at.getUTCFullYear() + Number(cycles) * 400;
  // Milliseconds alone when there is nothing past them: the text Date.toISOString writes.
  const fraction =
    micro === 0 ? pad(at.getUTCMilliseconds(), 3) : pad(at.getUTCMilliseconds() * 1000 + micro, 6);
  const text =
    `${pad(year > 0 ? year : 1 - year, 4)}-${pad(at.getUTCMonth() + 1, 2)}-${pad(at.getUTCDate(), 2)}` +
    `T${pad(at.getUTCHours(), 2)}:${pad(at.getUTCMinutes(), 2)}:${pad(at.getUTCSeconds(), 2)}.${fraction}Z`;
  return year > 0 ? text : `${text} BC`;
}

const TIMESTAMP =
  /^(\d{4,})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?(?:\s*(Z|[+-]\d\d(?::?\d\d)?(?::?\d\d)?))?( BC)?$/;

/**
 * Reads Postgres's text for a timestamp, timestamptz or date (ISO `DateStyle`, with a
 * space or a `T`, as columns and JSON write it), and the text `formatTimestamp` writes.
 * Without a zone the wall clock is read as UTC. Throws `TypeError` for other text.
 *
 * @example
 * parseTimestamp('2026-01-01 10:00:00.123456+02').toISOString(); // '2026-01-01T08:00:00.123456Z'
 * parseTimestamp('infinity') === Timestamp.POSITIVE_INFINITY; // true
 */
export function parseTimestamp(text: string): Timestamp {
  const trimmed = text.trim();
  if (trimmed === 'infinity') return Timestamp.POSITIVE_INFINITY;
  if (trimmed === '-infinity') return Timestamp.NEGATIVE_INFINITY;
  const match = TIMESTAMP.exec(trimmed);
  if (!match) throw new TypeError(`Cannot read ${JSON.stringify(text)} as a timestamp`);
  const [, year, month, day, hour, minute, second, fraction = '', zone, bc] = match;
  const fullYear = bc ? 1 - Number(year) : Number(year);
  // Years past what a Date holds (Postgres goes to 294276, dates to 5874897) are read
  // 400·n years earlier; the n cycles are added back exactly, as bigints.
  const cycles = fullYear > 270_000 ? Math.ceil((fullYear - 270_000) / 400) : 0;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: the latter reads years 0–99 as 1900–1999.
  date.setUTCFullYear(fullYear - cycles * 400, Number(month) - 1, Number(day));
  const micros = Number(fraction.padEnd(6, '0'));
  date.setUTCHours(Number(hour ?? 0), Number(minute ?? 0), Number(second ?? 0));
  const ms = date.getTime() - zoneOffsetMs(zone) + Math.floor(micros / 1000);
  if (cycles === 0) return new Timestamp(ms, micros % 1000);
  const beyond = BigInt(ms) + BigInt(cycles) * CYCLE_MS - BigInt(MAX_DATE_MS);
  return beyond > 0n
    ? new Timestamp(MAX_DATE_MS, micros % 1000, 0, Number(beyond))
    : new Timestamp(Number(beyond) + MAX_DATE_MS, micros % 1000);
}

function zoneOffsetMs(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z') return 0;
  const digits = zone.slice(1).replace(/:/g, '');
  const seconds =
    Number(digits.slice(0, 2)) * 3600 +
    Number(digits.slice(2, 4) || 0) * 60 +
    Number(digits.slice(4, 6) || 0);
  return (zone[0] === '-' ? -seconds : seconds) * 1000;
}
