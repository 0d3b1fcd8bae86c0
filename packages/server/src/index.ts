export type {
  ActionFilters,
  FieldFilter,
  FieldOperators,
  RowFilter,
} from './streams/change-filter';
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
} from './streams/change-stream';
export {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  type IsolationLevel,
  isTransientError,
  type ListenOptions,
} from './db/database';
export { DEFAULT_ENGINE_SCHEMA } from './db/engine-tables';
export {
  handleMutateRequest,
  type MutateOptions,
  type MutateResult,
  processMutateRequest,
} from './push/handle-mutate-request';
export {
  handlePullRequest,
  type PullOptions,
  type PullResult,
  processPullRequest,
} from './pull/handle-pull-request';
export { consoleLogger, type Logger, silentLogger } from './db/logger';
export { ENGINE_SCHEMA_VERSION, migrate } from './db/migrate';
export {
  createPokeHub,
  type PokeHub,
  type PokeHubOptions,
  type PokeRequestOptions,
} from './pokes/poke-hub';
export { type PruneOptions, pruneChanges } from './changes/prune-changes';
export { type CompiledQuery, type CompileOptions, compileQuery } from './query/query-compiler';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './db/retry';
export { runQuery } from './query/run-query';
export { ChangeStreamError } from './streams/stream-lease';
export {
  defineVisibility,
  PUBLIC_SCOPE,
  type TableVisibility,
  type Visibility,
} from './changes/visibility';
