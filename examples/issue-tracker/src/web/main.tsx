import './style.css';
import { createClient } from '@reprise/client';
import { RepriseProvider } from '@reprise/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { mutators } from '../shared/mutators';
import { schema } from '../shared/schema';
import { ErrorBanners } from './error-banners';
import { SignIn } from './sign-in';
import { describeMutation, Tracker } from './tracker';
import { loadWorkOffline } from './work-offline';

// The page: sign in (a name in a cookie), then a Reprise client over IndexedDB, handed to
// the React tree by RepriseProvider. The same schema and mutators run here, optimistically,
// and on the server.

async function main(element: HTMLElement) {
  const root = createRoot(element);
  const me = await fetch('/api/me');
  if (me.status === 401) {
    root.render(<SignIn />);
    return;
  }
  if (!me.ok) throw new Error(`The server answered ${me.status} to /api/me`);
  const { userID } = (await me.json()) as { userID: string };
  const errors = new ErrorBanners();
  // A remembered "Work offline" holds the client from the start: nothing is sent, not even
  // the first pull, until the box is unticked.
  const workOffline = loadWorkOffline(userID);
  const client = await createClient({
    schema,
    mutators,
    server: location.origin,
    userID,
    context: { userID },
    storage: 'indexeddb',
    online: !workOffline,
    // Signed out elsewhere (the cookie is gone): pushes wait, nothing is lost.
    onAuthError: () =>
      errors.show('You are signed out: sign in again (reload) to send your changes.'),
  });
  // Every refusal by the server, this page's calls and those queued before a reload alike,
  // each one shown: useLastRefusal() would show only the last of those one push refuses.
  client.onMutationSettled(({ name, outcome }) => {
    if (!outcome.ok) errors.show(`${describeMutation(name)} failed: ${outcome.error.message}`);
  });
  root.render(
    <StrictMode>
      <RepriseProvider client={client}>
        <Tracker userID={userID} errors={errors} workOffline={workOffline} />
      </RepriseProvider>
    </StrictMode>,
  );
}

const element = document.getElementById('app') as HTMLElement;
main(element).catch((error: unknown) => {
  element.textContent = `Could not start: ${error instanceof Error ? error.message : String(error)}`;
});
