import { pgTable, text } from 'drizzle-orm/pg-core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ApplicationError, ValidationError } from './errors';
import {
  createMutatorDefiner,
  defineMutators,
  flattenMutators,
  overrideMutators,
  runMutator,
} from './mutator';
import { createSchema } from './schema';
import type { ServerTransaction, Transaction } from './transaction';

const note = pgTable('note', { id: text('id').primaryKey(), body: text('body').notNull() });
const schema = createSchema({ tables: { note } });
const defineMutator = createMutatorDefiner<typeof schema, { userID: string }>();

const calls: string[] = [];
const mutators = defineMutators({
  note: {
    create: defineMutator(
      z.object({ id: z.string(), body: z.string().trim().min(1) }),
      async ({ args }) => {
        calls.push(`create:${args.body}`);
        return args.id;
      },
    ),
    archive: {
      all: defineMutator(async () => {
        calls.push('archive');
      }),
    },
  },
});

const fakeTx = { location: 'server' } as unknown as Transaction<typeof schema>;

describe('defineMutators', () => {
  it('names each leaf by its dotted path', () => {
    expect(mutators.note.create.mutatorName).toBe('note.create');
    expect(mutators.note.archive.all.mutatorName).toBe('note.archive.all');
    expect([...flattenMutators(mutators).keys()]).toEqual(['note.create', 'note.archive.all']);
  });

  it('a leaf called with args builds a typed request', () => {
    const request = mutators.note.create({ id: 'n1', body: 'hi' });
    expect(request).toEqual({ name: 'note.create', args: { id: 'n1', body: 'hi' } });
    expectTypeOf(request.name).toEqualTypeOf<'note.create'>();
  });

  it('refuses a name part containing a dot', () => {
    expect(() => defineMutators({ 'a.b': defineMutator(async () => {}) })).toThrow(
      /not a valid name part/,
    );
  });
});

describe('runMutator', () => {
  it('passes the validator output, not the raw input, to the function', async () => {
    calls.length = 0;
    const id = await runMutator(mutators.note.create, {
      tx: fakeTx,
      args: { id: 'n1', body: '  padded  ' },
      ctx: { userID: 'u' },
    });
    expect(id).toBe('n1');
    expect(calls).toEqual(['create:padded']);
  });

  it('throws ValidationError naming the field and never runs the body', async () => {
    calls.length = 0;
    const run = runMutator(mutators.note.create, { tx: fakeTx, args: { id: 1 }, ctx: {} });
    await expect(run).rejects.toBeInstanceOf(ValidationError);
    await expect(run).rejects.toBeInstanceOf(ApplicationError);
    await expect(run).rejects.toThrow(/Invalid arguments for note\.create: id: .*; body: /);
    expect(calls).toEqual([]);
  });

  it('waits for a validator that answers later, with a promise of any realm', async () => {
    // A Standard Schema validator may answer with a promise; vm's is not this realm's Promise.
    const { runInNewContext } = await import('node:vm');
    const later = (answer: object) => runInNewContext('Promise.resolve(answer)', { answer });
    const validator = (answer: (args: unknown) => unknown) =>
      ({
        '~standard': { version: 1, vendor: 'test', validate: answer },
      }) as unknown as z.ZodType<{ id: string }>;
    const { slow } = defineMutators({
      slow: {
        echo: defineMutator(
          validator((args) => later({ value: { id: `checked ${String(args)}` } })),
          async ({ args }) => args.id,
        ),
        refuse: defineMutator(
          validator(() => later({ issues: [{ message: 'no', path: ['id'] }] })),
          async () => 'ran',
        ),
      },
    });
    expect(await runMutator(slow.echo, { tx: fakeTx, args: 'a', ctx: {} })).toBe('checked a');
    await expect(runMutator(slow.refuse, { tx: fakeTx, args: {}, ctx: {} })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});

describe('overrideMutators', () => {
  it('replaces a leaf with a server-only function that keeps the shared validator', async () => {
    const server = overrideMutators(mutators, {
      note: { create: async ({ args }) => `server:${args.id}` },
    });
    expect(server.note.create.mutatorName).toBe('note.create');
    expect(server.note.archive.all).toBe(mutators.note.archive.all);
    const result = await runMutator(server.note.create, {
      tx: fakeTx,
      args: { id: 'n2', body: 'x' },
      ctx: {},
    });
    expect(result).toBe('server:n2');
    await expect(
      runMutator(server.note.create, { tx: fakeTx, args: { id: 'n2', body: '' }, ctx: {} }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('refuses an override for a name that does not exist', () => {
    expect(() => overrideMutators(mutators, { nope: async () => {} } as never)).toThrow(
      /no mutator or namespace "nope"/,
    );
  });
});

describe('types', () => {
  it('infers the argument type from the validator and refuses wrong args', () => {
    expectTypeOf(mutators.note.create).parameter(0).toEqualTypeOf<{ id: string; body: string }>();
    // @ts-expect-error body must be a string
    mutators.note.create({ id: 'n1', body: 3 });
    // @ts-expect-error id is required
    mutators.note.create({ body: 'x' });
    // A mutator without a validator and without args takes no argument.
    mutators.note.archive.all();
  });

  it('types tx from the schema and ctx from the definer', () => {
    defineMutator(z.object({ id: z.string() }), async ({ tx, ctx }) => {
      expectTypeOf(ctx).toEqualTypeOf<{ userID: string }>();
      expectTypeOf(tx.mutate.note.insert)
        .parameter(0)
        .toMatchTypeOf<{ id: string; body: string }>();
      if (tx.location === 'server') {
        expectTypeOf(tx).toEqualTypeOf<ServerTransaction<typeof schema, unknown>>();
      }
      // @ts-expect-error no such table
      tx.mutate.nope;
      // @ts-expect-error update needs the primary key
      await tx.mutate.note.update({ body: 'x' });
    });
  });
});
