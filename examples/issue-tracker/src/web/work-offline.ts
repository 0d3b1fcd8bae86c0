// "Work offline" is remembered per user in this browser (localStorage), so that a reload
// keeps the client offline and the queued changes wait for the user to untick it, rather
// than going out unnoticed. Tabs open at the same time each keep their own tick; a tab
// opened or reloaded later starts with the last one set.

const keyOf = (userID: string) => `reprise-tracker:work-offline:${userID}`;

/** Whether `userID` last ticked "Work offline" in this browser. */
export function loadWorkOffline(userID: string): boolean {
  try {
    return localStorage.getItem(keyOf(userID)) === 'true';
  } catch {
    // Storage blocked (privacy settings): the tick lasts as long as the page.
    return false;
  }
}

export function saveWorkOffline(userID: string, offline: boolean): void {
  try {
    if (offline) localStorage.setItem(keyOf(userID), 'true');
    else localStorage.removeItem(keyOf(userID));
  } catch {
    // As above: nothing to remember it in.
  }
}
