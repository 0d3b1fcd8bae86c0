import type { Client } from '@reprise/client';
import type { AnyMutators, RegisteredSchema } from '@reprise/shared';
import { createContext, createElement, type ReactNode, useContext } from 'react';
import { type AnyClient, storeFor } from './client-store';

const ClientContext = createContext<AnyClient | undefined>(undefined);

export interface RepriseProviderProps {
  /** The client from `createClient`; the hooks below the provider use it. */
  readonly client: AnyClient;
  readonly children?: ReactNode;
}

/**
 * Makes `client` the one the hooks below it use.
 *
 * @example
 * createRoot(element).render(<RepriseProvider client={client}><App /></RepriseProvider>);
 */
export function RepriseProvider({ client, children }: RepriseProviderProps): ReactNode {
  // Made now, not in an effect: it follows refusals from the first render on.
  storeFor(client);
  return createElement(ClientContext.Provider, { value: client }, children);
}

/**
 * The client of the nearest `RepriseProvider`; throws outside one. Name your client's type
 * once (`type AppClient = typeof client`) to have `mutate` and `query` typed.
 *
 * @example
 * const client = useClient<AppClient>();
 * const rows = useQuery(client.query.issue.where('open', true));
 */
export function useClient<C extends AnyClient = Client<RegisteredSchema, AnyMutators>>(): C {
  const client = useContext(ClientContext);
  if (client === undefined) {
    throw new Error('useClient: no client here; render this inside <RepriseProvider client={…}>');
  }
  return client as C;
}
