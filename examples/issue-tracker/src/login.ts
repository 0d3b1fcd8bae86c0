// A demo login: the user types a name, the server keeps it in a cookie. A real app would
// check a session or a token here; everything else only asks `userOf(request)`.

const COOKIE = 'user';
const NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;

/** The signed-in user: the `user` cookie, or an `x-user` header (for curl and scripts). */
export function userOf(request: Request): string | undefined {
  const cookie = request.headers.get('cookie') ?? '';
  const fromCookie = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]+)`).exec(cookie)?.[1];
  const raw = fromCookie ? safeDecode(fromCookie) : request.headers.get('x-user');
  return raw && NAME.test(raw) ? raw : undefined;
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** `POST /login` with a form field `name`: sets the cookie and goes back to the page. */
export async function handleLogin(request: Request): Promise<Response> {
  const form = await request.formData().catch(() => undefined);
  const name = String(form?.get('name') ?? '').trim();
  if (!NAME.test(name)) {
    return new Response('A name is 1 to 32 letters, digits, "_", "." or "-".', {
      status: 400,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  }
  return new Response(null, {
    status: 303,
    headers: {
      location: '/',
      'set-cookie': `${COOKIE}=${encodeURIComponent(name)}; Path=/; HttpOnly; SameSite=Lax`,
    },
  });
}

/** `POST /logout`: forgets the cookie. */
export function handleLogout(): Response {
  return new Response(null, {
    status: 303,
    headers: {
      location: '/',
      'set-cookie': `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`,
    },
  });
}
