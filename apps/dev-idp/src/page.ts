// The HTML pages Waxseal itself shows in a browser (the dev login, the dev instance's landing
// page, the CLI's loopback result page): one shell with inline CSS and a strict Content Security
// Policy, so no page makes a request anywhere (no fonts, scripts or images), and one escaping
// template tag, so a value put in a page can only ever be text.
import { createHash } from 'node:crypto';

/** HTML that is already safe to emit: built by `html` (whose holes are escaped) and nothing else. */
export class SafeHtml {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute value (quoted attributes only). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function fragment(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** Template tag: every interpolated value is escaped unless it is itself SafeHtml (or an array of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += fragment(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6476;--bg:#f4f5f8;--card:#fff;--line:#dde1e8;--accent:#3a4fd6;--bad:#b3261e;--good:#1e7b34}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ee;--muted:#a3abbb;--bg:#14171d;--card:#1d2129;--line:#30363f;--accent:#8c9bff;--bad:#ff8a80;--good:#7bd88f}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:28rem;margin:8vh auto 2rem;padding:0 1rem}
main.wide{max-width:52rem;margin-top:4vh}
.brand{display:flex;align-items:baseline;gap:.6rem;margin:0 0 1rem}
.brand b{font-size:1.35rem;letter-spacing:.02em}
.brand span{color:var(--muted);font-size:.95rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1.5rem 1.5rem 1.25rem;margin:0 0 1rem}
h1{font-size:1.3rem;margin:0 0 .75rem}
h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
.card>h1:first-child,.card>h2:first-child{margin-top:0}
p{margin:.5rem 0}
.muted{color:var(--muted);font-size:.92rem}
.good{color:var(--good)}
.bad{color:var(--bad)}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=email],input[type=text]{width:100%;font:inherit;padding:.55rem .7rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
input[type=email]:focus,input[type=text]:focus{outline:2px solid var(--accent);outline-offset:1px}
input[aria-invalid=true]{border-color:var(--bad)}
.error{color:var(--bad);margin:.4rem 0 0;font-size:.95rem}
.actions{display:flex;gap:.75rem;align-items:center;margin-top:1.25rem}
button{font:inherit;font-weight:600;padding:.55rem 1.2rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:transparent;color:var(--fg);border-color:var(--line)}
code,pre{font:.88rem/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.7rem .8rem;overflow-x:auto;white-space:pre}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;white-space:nowrap}
a{color:var(--accent)}
ul{padding-left:1.2rem;margin:.5rem 0}
`.trim();

const CSS_HASH = createHash('sha256').update(CSS).digest('base64');

/**
 * The Content-Security-Policy of every page: nothing but the one inline style sheet; no scripts.
 * `formAction` lists where forms may go (a login form's redirect to the client counts too).
 */
export function pageCsp(formAction: string[] = []): string {
  const forms = formAction.length ? formAction.join(' ') : "'none'";
  return `default-src 'none'; style-src 'sha256-${CSS_HASH}'; img-src 'none'; form-action ${forms}; frame-ancestors 'none'; base-uri 'none'`;
}

/** Headers to send with a page (CSP, no caching, no sniffing, no referrer leaking codes). */
export function pageHeaders(formAction: string[] = []): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': pageCsp(formAction),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
}

export interface PageOptions {
  /** The <title>. */
  title: string;
  /** Shown next to "Waxseal" at the top: whose instance this is. */
  instance?: string | undefined;
  /** The page's content (built with `html`). */
  body: SafeHtml;
  /** A wider layout (the landing page's tables and commands). */
  wide?: boolean;
}

/** A whole HTML document in Waxseal's shell. */
export function renderPage(o: PageOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title}</title>
<style>${new SafeHtml(CSS)}</style>
</head>
<body>
<main${o.wide ? new SafeHtml(' class="wide"') : ''}>
<div class="brand"><b>Waxseal</b>${o.instance ? html`<span>${o.instance}</span>` : ''}</div>
${o.body}
</main>
</body>
</html>
`.value;
}
