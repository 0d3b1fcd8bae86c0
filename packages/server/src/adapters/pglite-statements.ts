import { type PGlite, parse, protocol } from '@electric-sql/pglite';
import { isStalePlan } from '../db/database';

// PGlite's own `query` parses and plans every statement afresh and enters the WASM module
// six times to do it; the engine runs the same few statements on every push. Here each
// statement is prepared once under a name and then runs as Bind + Execute in one call,
// with the parameters serialised exactly as `query` would (by the types Postgres inferred).

const { serialize } = protocol;

/** Prepared statements kept per PGlite instance; the oldest unused go first. */
const CAPACITY = 256;

interface Prepared {
  readonly name: string;
  readonly types: readonly number[];
}

/** Runs one parameterised statement as a named prepared statement, returning its rows. */
export type PreparedRunner = <R>(text: string, params: readonly unknown[]) => Promise<R[]>;

const runners = new WeakMap<PGlite, PreparedRunner>();

/**
 * The prepared-statement runner of `pglite`, shared by every adapter over the instance so
 * that statement names never clash. Use it inside a transaction only: outside one, PGlite's
 * `query` also syncs to its file system.
 */
export function preparedRunner(pglite: PGlite): PreparedRunner {
  let runner = runners.get(pglite);
  if (!runner) {
    runner = createRunner(pglite);
    runners.set(pglite, runner);
  }
  return runner;
}

function createRunner(pglite: PGlite): PreparedRunner {
  const statements = new Map<string, Prepared>();
  // Names to close with the next message sent: evicted, or found stale.
  let closing: string[] = [];
  let counter = 0;

  const send = async (parts: Uint8Array[]) => {
    const pending = closing.map((name) => serialize.close({ type: 'S', name }));
    closing = [];
    return (await pglite.execProtocol(concat([...pending, ...parts]), { syncToFs: false }))
      .messages;
  };

  const prepare = async (text: string): Promise<Prepared> => {
    const name = `reprise_${++counter}`;
    const messages = await send([
      serialize.parse({ name, text }),
      serialize.describe({ type: 'S', name }),
      serialize.sync(),
    ]);
    const description = messages.find((m) => m.name === 'parameterDescription') as
      | { dataTypeIDs?: number[] }
      | undefined;
    const prepared = { name, types: description?.dataTypeIDs ?? [] };
    statements.set(text, prepared);
    if (statements.size > CAPACITY) {
      const [oldest, evicted] = statements.entries().next().value!;
      statements.delete(oldest);
      closing.push(evicted.name);
    }
    return prepared;
  };

  return <R>(text: string, params: readonly unknown[]) =>
    pglite.runExclusive(async () => {
      let prepared = statements.get(text);
      if (prepared) {
        statements.delete(text);
        statements.set(text, prepared);
      } else {
        prepared = await prepare(text);
      }
      const values = params.map((value, i) => {
        if (value === null || value === undefined) return null;
        const serializer = pglite.serializers[prepared.types[i]!];
        return serializer ? serializer(value) : String(value);
      });
      try {
        const messages = await send([
          serialize.bind({ statement: prepared.name, values }),
          serialize.describe({ type: 'P' }),
          serialize.execute({}),
          serialize.sync(),
        ]);
        return (parse.parseResults(messages, pglite.parsers)[0]?.rows ?? []) as R[];
      } catch (error) {
        // Deallocated behind our back, or a table changed under a cached plan: this
        // statement fails (with its transaction), the next use prepares it afresh.
        if (isStalePlan(error)) {
          statements.delete(text);
          closing.push(prepared.name);
        }
        throw error;
      }
    });
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
