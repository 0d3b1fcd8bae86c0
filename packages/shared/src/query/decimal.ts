// Exact comparison of decimal strings, as Postgres compares `numeric`: '1.5' = '1.50',
// '-0' = '0', '10' > '9', and NaN equal to itself and above everything, Infinity included.
// Rows hold numeric values as Postgres writes them; literals may also use an exponent.

const DECIMAL = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;
const INFINITY = /^\s*([+-]?)inf(?:inity)?\s*$/i;
const NAN = /^\s*nan\s*$/i;

/** A decimal as sign × 0.digits × 10^exponent, digits without leading or trailing zeros. */
interface Decimal {
  /** -2 for -Infinity, -1 negative, 0 zero, 1 positive, 2 Infinity, 3 NaN. */
  readonly rank: number;
  readonly digits: string;
  readonly exponent: number;
}

const parsed = new Map<string, Decimal | undefined>();
const PARSED_LIMIT = 10_000;

function parse(text: string): Decimal | undefined {
  if (NAN.test(text)) return { rank: 3, digits: '', exponent: 0 };
  const inf = INFINITY.exec(text);
  if (inf) return { rank: inf[1] === '-' ? -2 : 2, digits: '', exponent: 0 };
  const match = DECIMAL.exec(text);
  if (!match) return undefined;
  const [, sign, whole = '', fraction = '', exp] = match;
  if (whole === '' && fraction === '') return undefined;
  const all = whole + fraction;
  const lead = all.search(/[1-9]/);
  if (lead < 0) return { rank: 0, digits: '', exponent: 0 };
  const digits = all.slice(lead).replace(/0+$/, '');
  return {
    rank: sign === '-' ? -1 : 1,
    digits,
    exponent: whole.length - lead + Number(exp ?? 0),
  };
}

function mustParse(value: unknown): Decimal {
  const text = typeof value === 'string' ? value : String(value);
  let decimal = parsed.get(text);
  if (decimal === undefined) {
    decimal = parse(text);
    if (decimal === undefined) throw new TypeError(`${JSON.stringify(text)} is not a decimal`);
    if (parsed.size >= PARSED_LIMIT) parsed.clear();
    parsed.set(text, decimal);
  }
  return decimal;
}

/**
 * True when `text` is a value Postgres's `numeric` accepts: a decimal, optionally with an
 * exponent, or NaN / Infinity / -Infinity.
 *
 * @example
 * isDecimal('1.50'); // true
 * isDecimal('1,5'); // false
 */
export function isDecimal(text: string): boolean {
  return parse(text) !== undefined;
}

/**
 * Compares two decimals (strings, or numbers by their `String` form) exactly, as
 * Postgres compares `numeric` values. Throws `TypeError` for text that is not a decimal.
 *
 * @example
 * compareDecimals('1.5', '1.50'); // 0
 * compareDecimals('NaN', 'Infinity'); // 1
 */
export function compareDecimals(a: unknown, b: unknown): number {
  const x = mustParse(a);
  const y = mustParse(b);
  if (x.rank !== y.rank) return x.rank < y.rank ? -1 : 1;
  if (x.rank !== 1 && x.rank !== -1) return 0;
  let magnitude: number;
  if (x.exponent !== y.exponent) magnitude = x.exponent < y.exponent ? -1 : 1;
  else magnitude = x.digits === y.digits ? 0 : x.digits < y.digits ? -1 : 1;
  return x.rank === 1 ? magnitude : -magnitude;
}

/**
 * One string per decimal value: two decimals are equal exactly when their keys are.
 *
 * @example
 * decimalKey('1.50') === decimalKey('0.15e1'); // true
 */
export function decimalKey(value: unknown): string {
  const { rank, digits, exponent } = mustParse(value);
  if (rank === 1 || rank === -1) return `${rank < 0 ? '-' : ''}0.${digits}e${exponent}`;
  return ['-Infinity', '', '0', '', 'Infinity', 'NaN'][rank + 2]!;
}
