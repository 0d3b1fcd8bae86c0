import { useOnline, usePending } from '@reprise/react';

/**
 * "Online", "Offline" (ticked) or "Server unreachable", and how many changes the server has
 * yet to confirm. It stays on one line: the tick beside it must not wrap away from it.
 */
export function ConnectionStatus({ offline }: { readonly offline: boolean }) {
  const online = useOnline();
  const pending = usePending();
  const [dot, connection] = offline
    ? ['off', 'Offline']
    : online
      ? ['on', 'Online']
      : ['off', 'Server unreachable'];
  return (
    <span className="status" data-testid="status">
      <span className={`dot ${dot}`} />
      {connection} ·{' '}
      {pending === 0 ? (
        'all changes saved'
      ) : (
        <>
          <b data-testid="pending-count">{pending}</b> change{pending === 1 ? '' : 's'} not yet
          confirmed
        </>
      )}
    </span>
  );
}
