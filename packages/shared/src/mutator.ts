import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ValidationError } from './errors';
import type { RegisteredContext, RegisteredSchema, RegisteredWrappedTransaction } from './register';
import type { AnySchema } from './schema';
import type { Transaction } from './transaction';

/** The argument a mutator function receives. */
export interface MutatorOptions<TArgs, TSchema extends AnySchema, TContext, TWrapped> {
  readonly tx: Transaction<TSchema, TWrapped>;
  readonly args: TArgs;
  readonly ctx: TContext;
}

export type MutatorFn<
  TArgs,
  TReturn,
  TSchema extends AnySchema = RegisteredSchema,
  TContext = RegisteredContext,
  TWrapped = RegisteredWrappedTransaction,
> = (options: MutatorOptions<TArgs, TSchema, TContext, TWrapped>) => TReturn | Promise<TReturn>;

/**
 * A mutator before it has a name: a validator (optional) and a function. `TInput` is what
 * callers pass, `TArgs` what the function receives after validation.
 */
export interface MutatorDefinition<TInput = any, TArgs = any, TReturn = any> {
  readonly '~kind': 'mutator-definition';
  readonly validator: StandardSchemaV1<TInput, TArgs> | undefined;
  readonly fn: MutatorFn<TArgs, TReturn, any, any, any>;
  /**
   * Runs on the server once per mutation that failed for good (its writes rolled back, its
   * error recorded), after that is committed: a declarative transaction's `onError`. Its
   * own errors are logged and change nothing. `args` are as sent (validation may have failed).
   */
  readonly onFailure?: MutatorFailureHook | undefined;
}

/** See `MutatorDefinition.onFailure`. */
export type MutatorFailureHook = (
  error: unknown,
  options: { readonly args: unknown; readonly ctx: unknown },
) => void | Promise<void>;

/**
 * Defines one mutator. With a validator (zod or any Standard Schema), the args are
 * validated before `fn` runs and `fn` receives the validator's output.
 *
 * @example
 * const create = defineMutator(z.object({id: z.string(), title: z.string()}), async ({tx, args}) => {
 *   await tx.mutate.issue.insert({id: args.id, title: args.title});
 * });
 */
export function defineMutator<TValidator extends StandardSchemaV1, TReturn = void>(
  validator: TValidator,
  fn: MutatorFn<StandardSchemaV1.InferOutput<TValidator>, TReturn>,
): MutatorDefinition<
  StandardSchemaV1.InferInput<TValidator>,
  StandardSchemaV1.InferOutput<TValidator>,
  Awaited<TReturn>
>;
export function defineMutator<TArgs = void, TReturn = void>(
  fn: MutatorFn<TArgs, TReturn>,
): MutatorDefinition<TArgs, TArgs, Awaited<TReturn>>;
export function defineMutator(
  validatorOrFn: StandardSchemaV1 | MutatorFn<unknown, unknown>,
  maybeFn?: MutatorFn<unknown, unknown>,
): MutatorDefinition {
  if (typeof validatorOrFn === 'function') {
    return { '~kind': 'mutator-definition', validator: undefined, fn: validatorOrFn };
  }
  if (!isStandardSchema(validatorOrFn)) {
    throw new TypeError('defineMutator: the validator must implement Standard Schema (zod does)');
  }
  if (typeof maybeFn !== 'function') {
    throw new TypeError('defineMutator: the second argument must be the mutator function');
  }
  return { '~kind': 'mutator-definition', validator: validatorOrFn, fn: maybeFn };
}

/** `defineMutator`'s overloads, typed for one schema, context and driver. */
export interface DefineMutator<TSchema extends AnySchema, TContext, TWrapped> {
  <TValidator extends StandardSchemaV1, TReturn = void>(
    validator: TValidator,
    fn: MutatorFn<StandardSchemaV1.InferOutput<TValidator>, TReturn, TSchema, TContext, TWrapped>,
  ): MutatorDefinition<
    StandardSchemaV1.InferInput<TValidator>,
    StandardSchemaV1.InferOutput<TValidator>,
    Awaited<TReturn>
  >;
  <TArgs = void, TReturn = void>(
    fn: MutatorFn<TArgs, TReturn, TSchema, TContext, TWrapped>,
  ): MutatorDefinition<TArgs, TArgs, Awaited<TReturn>>;
}

/**
 * A `defineMutator` typed for the given schema and context, for code that cannot use the
 * global `Register` (libraries, tests, repos with several schemas).
 *
 * @example
 * const defineMutator = createMutatorDefiner<typeof schema, {userID: string}>();
 */
export function createMutatorDefiner<
  TSchema extends AnySchema,
  TContext = unknown,
  TWrapped = unknown,
>(): DefineMutator<TSchema, TContext, TWrapped> {
  return defineMutator as unknown as DefineMutator<TSchema, TContext, TWrapped>;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return typeof value === 'object' && value !== null && '~standard' in value;
}

/** A push entry for a mutator: its dotted name and its argument. */
export interface MutationRequest<TName extends string = string, TInput = unknown> {
  readonly name: TName;
  readonly args: TInput;
}

/**
 * A named mutator, as `defineMutators` returns it. Calling it builds a typed
 * `MutationRequest`; `run` validates and runs it against a transaction.
 */
export interface Mutator<TName extends string = string, TInput = any, TArgs = any, TReturn = any> {
  readonly '~kind': 'mutator';
  readonly mutatorName: TName;
  readonly definition: MutatorDefinition<TInput, TArgs, TReturn>;
  (
    ...args: undefined extends TInput ? [args?: TInput] : [args: TInput]
  ): MutationRequest<TName, TInput>;
}

/** A tree of definitions, as passed to `defineMutators`. */
export interface MutatorDefinitionTree {
  readonly [key: string]: MutatorDefinition | MutatorDefinitionTree;
}

/** The named tree `defineMutators` returns for a tree of definitions. */
export type Mutators<T, TPrefix extends string = ''> = {
  readonly [K in keyof T & string]: T[K] extends MutatorDefinition<infer I, infer A, infer R>
    ? Mutator<`${TPrefix}${K}`, I, A, R>
    : Mutators<T[K], `${TPrefix}${K}.`>;
};

/** Any tree of named mutators. */
export interface AnyMutators {
  readonly [key: string]: Mutator | AnyMutators;
}

/**
 * Names every leaf of a tree of mutator definitions by its dotted path.
 *
 * @example
 * export const mutators = defineMutators({issue: {create, close}});
 * mutators.issue.create.mutatorName; // 'issue.create'
 */
export function defineMutators<const T extends MutatorDefinitionTree>(tree: T): Mutators<T> {
  return nameTree(tree, '') as Mutators<T>;
}

function nameTree(tree: MutatorDefinitionTree, prefix: string): AnyMutators {
  const named: Record<string, Mutator | AnyMutators> = {};
  for (const [key, value] of Object.entries(tree)) {
    if (key === '' || key.includes('.')) {
      throw new TypeError(`defineMutators: "${prefix}${key}" is not a valid name part`);
    }
    named[key] = isDefinition(value)
      ? nameMutator(`${prefix}${key}`, value)
      : nameTree(value, `${prefix}${key}.`);
  }
  return named;
}

function isDefinition(value: unknown): value is MutatorDefinition {
  return (value as MutatorDefinition | undefined)?.['~kind'] === 'mutator-definition';
}

function nameMutator(name: string, definition: MutatorDefinition): Mutator {
  const build = (args?: unknown): MutationRequest => ({ name, args });
  return Object.assign(build, {
    '~kind': 'mutator' as const,
    mutatorName: name,
    definition,
  }) as Mutator;
}

/** A server-only replacement for one leaf: a full definition, or just a new function. */
export type MutatorOverride<M> =
  M extends Mutator<string, infer I, infer A>
    ? MutatorDefinition<I, any> | MutatorFn<A, unknown>
    : { readonly [K in keyof M]?: MutatorOverride<M[K]> };

/**
 * Replaces some leaves with server-only versions. A bare function keeps the shared
 * validator; a full definition brings its own.
 *
 * @example
 * const serverMutators = overrideMutators(mutators, {
 *   issue: {create: async ({tx, args}) => { ...; await sendEmail(args) }},
 * });
 */
export function overrideMutators<M extends AnyMutators>(
  mutators: M,
  overrides: MutatorOverride<M>,
): M {
  const result: Record<string, Mutator | AnyMutators> = { ...mutators };
  for (const [key, override] of Object.entries(overrides as Record<string, unknown>)) {
    const current = mutators[key];
    if (current === undefined) {
      throw new TypeError(
        `overrideMutators: there is no mutator or namespace "${key}" to override`,
      );
    }
    if (isMutator(current)) {
      const definition = isDefinition(override)
        ? override
        : {
            ...current.definition,
            fn: override as MutatorDefinition['fn'],
          };
      result[key] = nameMutator(current.mutatorName, definition);
    } else {
      result[key] = overrideMutators(current, override as MutatorOverride<AnyMutators>);
    }
  }
  return result as M;
}

export function isMutator(value: unknown): value is Mutator {
  return typeof value === 'function' && (value as Mutator)['~kind'] === 'mutator';
}

const flattened = new WeakMap<AnyMutators, ReadonlyMap<string, Mutator>>();

/** Every leaf of a named tree, by dotted name. Cached per tree. */
export function flattenMutators(mutators: AnyMutators): ReadonlyMap<string, Mutator> {
  let map = flattened.get(mutators);
  if (!map) {
    const entries = new Map<string, Mutator>();
    const walk = (tree: AnyMutators) => {
      for (const value of Object.values(tree)) {
        if (isMutator(value)) entries.set(value.mutatorName, value);
        else walk(value);
      }
    };
    walk(mutators);
    map = entries;
    flattened.set(mutators, map);
  }
  return map;
}

/**
 * Validates `args` with the mutator's validator (if any) and runs it. A validation
 * failure throws `ValidationError` and the function body never runs.
 *
 * @example
 * const result = await runMutator(mutators.issue.create, {tx, args, ctx});
 */
export async function runMutator<TReturn>(
  mutator: Mutator<string, any, any, TReturn>,
  options: { tx: Transaction<any, any>; args: unknown; ctx: unknown },
): Promise<TReturn> {
  const { validator, fn } = mutator.definition;
  let args = options.args;
  if (validator) {
    // Most validators (zod's among them) answer at once: no wait for those. Any thenable
    // is awaited, a promise of another realm included.
    const validated = validator['~standard'].validate(args);
    const result = 'then' in validated ? await validated : validated;
    if (result.issues) {
      throw new ValidationError(
        mutator.mutatorName,
        result.issues.map((issue) => ({
          message: issue.message,
          path: (issue.path ?? []).map((segment) => {
            const key = typeof segment === 'object' ? segment.key : segment;
            return typeof key === 'number' ? key : String(key);
          }),
        })),
      );
    }
    args = result.value;
  }
  // Awaited, not returned: an async function that returns a promise resumes its caller two
  // turns of the microtask queue later than one that awaits it.
  return await fn({ tx: options.tx, args, ctx: options.ctx });
}
