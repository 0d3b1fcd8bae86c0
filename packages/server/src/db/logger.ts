/** Where the server writes its structured log lines. */
export interface Logger {
  debug(entry: Record<string, unknown>): void;
  warn(entry: Record<string, unknown>): void;
  error(entry: Record<string, unknown>): void;
}

function write(level: string, entry: Record<string, unknown>) {
  const { error, ...rest } = entry;
  const line = JSON.stringify({
    level,
    ...rest,
    ...(error === undefined ? {} : { error: error instanceof Error ? error.message : error }),
  });
  process.stderr.write(`${line}\n`);
}

/**
 * The default logger: one JSON line per entry on stderr. Debug lines appear only when
 * `REPRISE_LOG=debug`.
 *
 * @example
 * handleMutateRequest({...options, logger: consoleLogger});
 */
export const consoleLogger: Logger = {
  debug: (entry) => {
    if (process.env.REPRISE_LOG === 'debug') write('debug', entry);
  },
  warn: (entry) => write('warn', entry),
  error: (entry) => write('error', entry),
};

/** A logger that drops everything; handy in tests. */
export const silentLogger: Logger = { debug() {}, warn() {}, error() {} };
