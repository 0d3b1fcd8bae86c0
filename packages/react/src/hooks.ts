import type { Client } from '@reprise/client';
import type { AnyMutators, RegisteredSchema } from '@reprise/shared';
import { useCallback, useSyncExternalStore } from 'react';
import {
  type AnyClient,
  type LiveQuery,
  type QueryState,
  type Refusal,
  storeFor,
} from './client-store';
import { useClient } from './provider';

/**
 * Follows a query of the provider's client: re-renders when its result changes. Returns
 * `[rows, status]`: `rows` as `query.run()` gives them (an array, or a row or undefined
 * after `.one()`), pending mutations applied; `status.type` is `'complete'` once the client
 * has applied a pull from the server in this session, `'unknown'` before (the rows come
 * from local storage only). Components asking for the same query share one live view.
 *
 * @example
 * const client = useClient<AppClient>();
 * const [issues, {type}] = useQuery(client.query.issue.where('open', true).orderBy('created'));
 */
export function useQuery<Q extends LiveQuery>(query: Q): QueryState<Q['~result']> {
  const entry = storeFor(useClient()).entry(query);
  return useSyncExternalStore(entry.subscribe, entry.getSnapshot, entry.getSnapshot);
}

/**
 * `client.mutate` of the provider's client.
 *
 * @example
 * const mutate = useMutate<AppClient>();
 * const onClick = () => mutate.issue.close({id});
 */
export function useMutate<
  C extends AnyClient = Client<RegisteredSchema, AnyMutators>,
>(): C['mutate'] {
  return useClient<C>().mutate;
}

/**
 * How many mutations wait for the server's confirmation (`client.pending`), kept current.
 *
 * @example
 * const pending = usePending();
 * return pending > 0 ? <span>{pending} unsaved</span> : null;
 */
export function usePending(): number {
  const client = useClient();
  const subscribe = useCallback(
    (onChange: () => void) => client.onPendingChange(onChange),
    [client],
  );
  return useSyncExternalStore(
    subscribe,
    () => client.pending,
    () => client.pending,
  );
}

/**
 * Whether the client reaches the server (`client.online`): false while it is unreachable
 * or `setOnline(false)` holds the client offline.
 *
 * @example
 * const online = useOnline();
 */
export function useOnline(): boolean {
  const client = useClient();
  const subscribe = useCallback(
    (onChange: () => void) => client.onOnlineChange(onChange),
    [client],
  );
  return useSyncExternalStore(
    subscribe,
    () => client.online,
    () => client.online,
  );
}

/**
 * The last queued mutation the server refused with an `ApplicationError` (as
 * `client.onMutationSettled` reports it) since the provider first rendered with this
 * client, or undefined. Each refusal is a new object, so an effect on it runs again for a
 * new refusal; but refusals that settle together (one push's answer, one pull) render
 * once, with the last of them. To see every refusal, listen with
 * `client.onMutationSettled`. A call the client refuses at once (its validation) rejects
 * `client` instead.
 *
 * @example
 * const refusal = useLastRefusal();
 * return refusal ? <p role="alert">{refusal.outcome.error.message}</p> : null;
 */
export function useLastRefusal(): Refusal | undefined {
  const store = storeFor(useClient());
  return useSyncExternalStore(store.subscribeRefusal, store.getRefusal, store.getRefusal);
}
