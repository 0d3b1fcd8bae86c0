/** The demo's sign-in: any name, posted to /login, which sets the cookie and reloads. */
export function SignIn() {
  return (
    <main className="login">
      <h1>Reprise issue tracker</h1>
      <form method="post" action="/login" data-testid="login">
        <label>
          Your name {/* biome-ignore lint/a11y/noAutofocus: the name is all this page asks for */}
          <input name="name" required maxLength={32} autoFocus />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p className="hint">
        Any name will do: it decides which issues you own. Open a second browser (or a private
        window) as someone else to watch changes flow.
      </p>
    </main>
  );
}
