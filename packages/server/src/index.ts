export type {
  ActionFilters,
  FieldFilter,
  FieldOperators,
  RowFilter,
} from './change-filter';
export {
  type ChangeEvent,
  type ChangeEventOf,
  type ChangeFilters,
  type ChangeStream,
  type ChangeStreamOptions,
  type ChangeStreams,
  type ChangeStreamsOptions,
  type ChangeSubscription,
  type CreateEvent,
  createChangeStreams,
  type DeleteEvent,
  type UpdateEvent,
} from './change-stream';
export {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  type IsolationLevel,
  isTransientError,
  type ListenOptions,
} from './database';
export { DEFAULT_ENGINE_SCHEMA } from './engine-tables';
export {
  handleMutateRequest,
  type MutateOptions,
  type MutateRequestOptions,
  type MutateResult,
  processMutateRequest,
} from './handle-mutate-request';
export {
  handlePullRequest,
  type PullOptions,
  type PullRequestOptions,
  type PullResult,
  processPullRequest,
} from './handle-pull-request';
export { consoleLogger, type Logger, silentLogger } from './logger';
export { ENGINE_SCHEMA_VERSION, migrate } from './migrate';
export {
  createPokeHub,
  type PokeHub,
  type PokeHubOptions,
  type PokeRequestOptions,
} from './poke-hub';
export { type PruneOptions, pruneChanges } from './prune-changes';
export { type CompiledQuery, type CompileOptions, compileQuery } from './query-compiler';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry';
export { runQuery } from './run-query';
export { ChangeStreamError } from './stream-lease';
export {
  defineVisibility,
  PUBLIC_SCOPE,
  type TableVisibility,
  type Visibility,
} from './visibility';
