export { backoffDelay } from './backoff';
export { ClientClosedError } from './client-closed-error';
export { createClientTransaction } from './client-transaction';
export { type Client, createClient } from './create-client';
export type { CrudAPI, CrudID, TableCrud } from './crud-api';
export { deepEqual } from './deep-equal';
export { createIndexedDBStorage } from './indexeddb-storage';
export type {
  ClientQuery,
  ClientQueryBuilder,
  MaterializedView,
} from './live-query';
export {
  type ClientRecord,
  type ClientStorage,
  createMemoryStorage,
  type GroupRecord,
  type PendingMutation,
  type StorageWrite,
} from './storage';
export type {
  AuthOption,
  AuthState,
  ClientOptions,
  MutateAPI,
  MutationCall,
  MutationOutcome,
  ServerOption,
  SettledMutation,
} from './types';
