export { CaptureMissingError } from './changes/capture';
export { ENGINE_SCHEMA_VERSION, type MigrateOptions, migrate } from './changes/migrate';
export { type PruneOptions, pruneChanges } from './changes/prune-changes';
export {
  defineVisibility,
  PUBLIC_SCOPE,
  type TableVisibility,
  type Visibility,
} from './changes/visibility';
export type {
  CrudOutcome,
  CrudRefusalReason,
  CrudValidationContext,
  CustomValidation,
} from './crud/crud-processor';
export {
  type CrudOptions,
  type CrudRequestOptions,
  handleCrudRequest,
  type OutboxResult,
  type PowerSyncResult,
  processCrudRequest,
} from './crud/handle-crud-request';
export {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  type IsolationLevel,
  isTransientError,
  type ListenOptions,
} from './db/database';
export { DEFAULT_ENGINE_SCHEMA } from './db/engine-tables';
export { consoleLogger, type Logger, silentLogger } from './db/logger';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './db/retry';
export { CLEANUP_RESULTS_MUTATION, type ZeroModeOptions } from './db/zero-shard';
export {
  createEntityContext,
  type EntityContext,
  type EntityContextOptions,
  type EntityTable,
  type EntityTables,
} from './entities/entity-context';
export {
  type AnyJobDefinition,
  type DefineJobOptions,
  defineJob,
  type JobDefinition,
  type JobInfo,
  JobPayloadError,
} from './jobs/define-job';
export type {
  DeadJob,
  JobEngine,
  JobRunSummary,
  JobWorker,
  JobWorkerOptions,
  PgPoolLike,
} from './jobs/job-backend';
export { createJobQueue, type JobQueue, type JobQueueOptions } from './jobs/job-queue';
export {
  createPokeHub,
  type PokeHub,
  type PokeHubOptions,
  type PokeRequestOptions,
} from './pokes/poke-hub';
export {
  handlePullRequest,
  type PullOptions,
  type PullRequestOptions,
  type PullResult,
  processPullRequest,
} from './pull/handle-pull-request';
export type { CrudOperation, OutboxEvent, PowerSyncOp } from './push/crud-protocol';
export {
  handleMutateRequest,
  type MutateOptions,
  type MutateRequestOptions,
  type MutateResult,
  processMutateRequest,
} from './push/handle-mutate-request';
export { WriteForbiddenError } from './push/write-forbidden';
export {
  defineWritePolicy,
  type ScopeKey,
  type WritePolicy,
  type WriteRule,
  type WriteRuleContext,
} from './push/write-policy';
export { type CompiledQuery, type CompileOptions, compileQuery } from './query/query-compiler';
export { runQuery } from './query/run-query';
export {
  mapRoute,
  type RouteDefinition,
  type RouteHandler,
  type RouteMethod,
  type RouteOptions,
  type RouteResponse,
  type RouteValidate,
} from './routes/map-route';
export type { RouteCall } from './routes/route-processor';
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
export { ChangeStreamError } from './streams/stream-lease';
