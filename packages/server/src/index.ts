export {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  type IsolationLevel,
  isTransientError,
} from './database';
export { DEFAULT_ENGINE_SCHEMA } from './engine-tables';
export {
  handleMutateRequest,
  type MutateOptions,
  type MutateResult,
  processMutateRequest,
} from './handle-mutate-request';
export { consoleLogger, type Logger, silentLogger } from './logger';
export { ENGINE_SCHEMA_VERSION, migrate } from './migrate';
export { type CompiledQuery, type CompileOptions, compileQuery } from './query-compiler';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry';
export { runQuery } from './run-query';
