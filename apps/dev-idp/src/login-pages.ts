// The dev IdP's own pages: the login (an e-mail address, no password, since the dev IdP trusts
// any address and says so), the device-flow code pages and the error page. Pure functions from
// what a page shows to HTML; nothing from the OAuth request (PKCE challenge, nonce, state) is shown.
import { SafeHtml, html, renderPage } from './page.ts';

/** Longest address SMTP allows (RFC 5321 4.5.3.1.3), also the input's maxlength. */
const MAX_EMAIL = 254;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The address typed on the login page, checked as the server must (the browser's check is a courtesy). */
export function checkLoginEmail(raw: unknown): { email: string } | { problem: string } {
  const email = typeof raw === 'string' ? raw.trim() : '';
  if (!email) return { problem: 'Enter your e-mail address.' };
  if (email.length > MAX_EMAIL) return { problem: `An e-mail address has at most ${MAX_EMAIL} characters.` };
  if (!EMAIL_RE.test(email)) {
    return { problem: `"${email}" is not an e-mail address. Your login is an e-mail address, such as you@example.com.` };
  }
  return { email };
}

export interface LoginPageInput {
  /** Who is asking, e.g. "dev instance at 127.0.0.1:7117". */
  instance: string;
  /** The form's targets. */
  submitUrl: string;
  abortUrl: string;
  /** The OAuth client asking (its id). */
  client: string;
  /** What was typed, when the page is shown again with a problem. */
  email?: string | undefined;
  problem?: string | undefined;
}

export function loginPage(p: LoginPageInput): string {
  const invalid = p.problem ? new SafeHtml(' aria-invalid="true" aria-describedby="email-problem"') : '';
  return renderPage({
    title: 'Log in - Waxseal',
    instance: p.instance,
    body: html`<div class="card">
<h1>Log in to sign</h1>
<p>A signing tool (client <code>${p.client}</code>) asks who you are. The address you enter becomes the identity in your signing certificates.</p>
<form method="post" action="${p.submitUrl}">
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" required autofocus autocomplete="email" maxlength="${MAX_EMAIL}" placeholder="you@example.com" value="${p.email ?? ''}"${invalid}>
${p.problem ? html`<p class="error" id="email-problem" role="alert">${p.problem}</p>` : ''}
<div class="actions">
<button type="submit">Log in</button>
<button type="submit" class="secondary" formaction="${p.abortUrl}" formnovalidate>Cancel</button>
</div>
</form>
</div>
<p class="muted">This is the development identity provider of a Waxseal dev instance. It has no passwords: it trusts any e-mail address you type. Never use it for signing that others rely on.</p>`,
  });
}

export function deviceCodePage(p: { instance: string; form: SafeHtml; problem?: string | undefined }): string {
  return renderPage({
    title: 'Enter your code - Waxseal',
    instance: p.instance,
    body: html`<div class="card">
<h1>Log in a device</h1>
<p>Enter the code the terminal shows.</p>
${p.form}
${p.problem ? html`<p class="error" role="alert">${p.problem}</p>` : ''}
<div class="actions"><button type="submit" form="op.deviceInputForm">Continue</button></div>
</div>`,
  });
}

export function deviceConfirmPage(p: { instance: string; form: SafeHtml; client: string; userCode: string }): string {
  return renderPage({
    title: 'Confirm the device - Waxseal',
    instance: p.instance,
    body: html`<div class="card">
<h1>Is this your terminal?</h1>
<p>The client <code>${p.client}</code> with the code <code>${p.userCode}</code> asks to log in. Continue only if the code matches the one your terminal shows.</p>
${p.form}
<div class="actions">
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" class="secondary" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button>
</div>
</div>`,
  });
}

export function messagePage(p: { instance: string; title: string; message: string; bad?: boolean }): string {
  return renderPage({
    title: `${p.title} - Waxseal`,
    instance: p.instance,
    body: html`<div class="card"><h1${p.bad ? new SafeHtml(' class="bad"') : ''}>${p.title}</h1><p>${p.message}</p></div>`,
  });
}
