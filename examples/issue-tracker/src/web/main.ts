import './style.css';
import { createClient } from '@reprise/client';
import { mutators } from '../shared/mutators';
import { schema } from '../shared/schema';
import { startTracker } from './tracker';
import { renderLogin } from './view';

// The page: sign in (a name in a cookie), then a Reprise client over IndexedDB drives the
// tracker. The same schema and mutators run here, optimistically, and on the server.

async function main(root: HTMLElement) {
  const me = await fetch('/api/me');
  if (me.status === 401) {
    root.innerHTML = renderLogin();
    return;
  }
  if (!me.ok) throw new Error(`The server answered ${me.status} to /api/me`);
  const { userID } = (await me.json()) as { userID: string };
  let tracker: ReturnType<typeof startTracker> | undefined;
  const client = await createClient({
    schema,
    mutators,
    server: location.origin,
    userID,
    context: { userID },
    storage: 'indexeddb',
    // Signed out elsewhere (the cookie is gone): pushes wait, nothing is lost.
    onAuthError: () =>
      tracker?.showError('You are signed out: sign in again (reload) to send your changes.'),
  });
  tracker = startTracker(root, client, userID);
}

const root = document.getElementById('app') as HTMLElement;
main(root).catch((error: unknown) => {
  root.textContent = `Could not start: ${error instanceof Error ? error.message : String(error)}`;
});
