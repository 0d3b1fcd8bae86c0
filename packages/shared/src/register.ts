import type { AnySchema } from './schema';

/**
 * Apps register their schema, context and driver transaction type once, so that every
 * `defineMutator` callback is typed without generics:
 *
 * @example
 * declare module '@reprise/shared' {
 *   interface Register {
 *     schema: typeof schema;
 *     context: {userID: string};
 *   }
 * }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by declaration merging in apps.
export interface Register {}

export type RegisteredSchema = Register extends { schema: infer S extends AnySchema }
  ? S
  : AnySchema;
export type RegisteredContext = Register extends { context: infer C } ? C : unknown;
export type RegisteredWrappedTransaction = Register extends { wrappedTransaction: infer W }
  ? W
  : unknown;
