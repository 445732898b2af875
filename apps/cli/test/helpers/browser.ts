// Plays the user's browser against the dev IdP: follows redirects with a cookie jar and submits
// the dev IdP's login form (and any consent form), the way a person would click through them.
export async function clickThroughLogin(startUrl: string, email: string, stopAt: (u: URL) => boolean): Promise<URL> {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  };
  let url = new URL(startUrl);
  let init: RequestInit = {};
  for (let step = 0; step < 20; step++) {
    if (stopAt(url)) return url;
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: cookieHeader() },
    });
    remember(res);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`login page answered ${res.status}: ${html.slice(0, 200)}`);
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    if (!form) throw new Error(`no form on ${url}: ${html.slice(0, 200)}`);
    const fields = new URLSearchParams();
    for (const m of form[2]!.matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(m[0])?.[1];
      if (!name) continue;
      const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
      fields.set(name, name === 'login' || name === 'email' ? email : name === 'password' ? 'dev' : value);
    }
    url = new URL(form[1]!, url);
    init = { method: 'POST', body: fields.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('login did not finish in 20 steps');
}
