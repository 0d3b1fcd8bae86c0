export type {
  AnyClient,
  LiveQuery,
  QueryState,
  QueryStatus,
  Refusal,
} from './client-store';
export { useLastRefusal, useMutate, useOnline, usePending, useQuery } from './hooks';
export { RepriseProvider, type RepriseProviderProps, useClient } from './provider';
