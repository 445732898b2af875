// The principal of a certificate (SAN, proof-of-possession subject, extensions) that each issuer
// type derives from verified claims; the CI types are in ci-providers.ts. Claims that do not fit
// the issuer type are refused with ERR_IDENTITY_CLAIMS.
import { WaxsealError, type FulcioExtensionName } from '@waxseal/core';
import { goFormatValue } from '../gotemplate.ts';
import {
  claimsError,
  emailVerified,
  evalJsonPath,
  isEmailAddress,
  isPlainObject,
  joinUrlPath,
  requireAbsoluteUri,
  requireSubject,
  subjectOf,
  type Claims,
} from './claims.ts';
import type { IssuerConfig, OidcIssuer } from './config.ts';
import { buildkitePrincipal, ciProviderPrincipal, codefreshPrincipal, githubPrincipal, gitlabPrincipal } from './ci-providers.ts';

/** What an issuance needs from a verified identity. */
export interface Principal {
  /** The one SAN of the certificate. OtherName SANs use type-id 1.3.6.1.4.1.57264.1.7. */
  readonly san: { readonly type: 'email' | 'uri' | 'otherName'; readonly value: string };
  /** The string the proof of possession signs (email or sub). */
  readonly challenge: string;
  /** Value of extensions 1.1 and 1.8. */
  readonly issuer: string;
  /** Legacy GitHub 1.2-1.6 and CI 1.9-1.23 extension values (empty values are left out). */
  readonly extensions: Readonly<Partial<Record<FulcioExtensionName, string>>>;
  /** Raw `sub` claim (extension 1.24); '' when the token has none. */
  readonly subject: string;
}

/** Derives the SAN, challenge and extensions for verified `claims` from issuer `issuer`. */
export function buildPrincipal(config: IssuerConfig, issuer: OidcIssuer, claims: Claims): Principal {
  const iss = claims.iss;
  if (typeof iss !== 'string' || iss === '') claimsError('identity token lacks the iss claim');
  switch (issuer.type) {
    case 'email':
      return emailPrincipal(issuer, claims, iss);
    case 'uri':
      return uriPrincipal(issuer, claims, iss);
    case 'username':
      return usernamePrincipal(issuer, claims, iss);
    case 'spiffe':
      return spiffePrincipal(issuer, claims, iss);
    case 'kubernetes':
      return kubernetesPrincipal(claims, iss);
    case 'github-workflow':
      return githubPrincipal(claims, iss);
    case 'gitlab-pipeline':
      return gitlabPrincipal(claims, iss);
    case 'buildkite-job':
      return buildkitePrincipal(claims, iss);
    case 'codefresh-workflow':
      return codefreshPrincipal(claims, iss);
    case 'chainguard-identity':
      return chainguardPrincipal(claims, iss);
    case 'ci-provider': {
      const meta = Object.hasOwn(config.ciIssuerMetadata, issuer.ciProvider!) ? config.ciIssuerMetadata[issuer.ciProvider!] : undefined;
      if (!meta) throw new WaxsealError('ERR_CONFIG', `no ci-issuer-metadata for ci-provider ${issuer.ciProvider}`);
      return ciProviderPrincipal(meta, claims, iss);
    }
  }
}

function emailPrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const email = claims.email;
  if (email === undefined || email === null || email === '') claimsError('identity token lacks the email claim');
  if (typeof email !== 'string') claimsError('identity token claim email must be a string');
  if (!issuer.skipEmailVerification && !emailVerified(claims.email_verified))
    claimsError('email_verified claim was false: the email address is not verified');
  if (!isEmailAddress(email)) claimsError(`email address ${JSON.stringify(email)} is not valid`);
  let certIssuer = iss;
  if (issuer.issuerClaim !== undefined) {
    const v = evalJsonPath(claims, issuer.issuerClaim);
    certIssuer = goFormatValue(v);
    if (certIssuer === '' || v === null || typeof v === 'object')
      claimsError(`identity token claim at ${issuer.issuerClaim} is not a usable issuer`);
  }
  return { san: { type: 'email', value: email }, challenge: email, issuer: certIssuer, extensions: {}, subject: subjectOf(claims) };
}

function uriPrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  if (isEmailAddress(sub)) claimsError('uri subject should not be an email address');
  const u = requireAbsoluteUri(sub, 'subject');
  const domain = new URL(issuer.subjectDomain!);
  if (u.protocol !== domain.protocol)
    claimsError(`subject URI scheme (${u.protocol.slice(0, -1)}) must match expected domain URI scheme (${domain.protocol.slice(0, -1)})`);
  if (u.hostname !== domain.hostname) claimsError(`subject hostname (${u.hostname}) must match expected domain (${domain.hostname})`);
  return { san: { type: 'uri', value: sub }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

function usernamePrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  if (sub.includes('!')) claimsError('username cannot contain ! character');
  if (isEmailAddress(sub)) claimsError('username subject should not be an email address');
  return { san: { type: 'otherName', value: `${sub}!${issuer.subjectDomain}` }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

const SPIFFE_ID_RE = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/;

function spiffePrincipal(issuer: OidcIssuer, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const m = SPIFFE_ID_RE.exec(sub);
  if (!m || m[2]!.split('/').some((seg) => seg === '.' || seg === '..')) claimsError(`invalid spiffe ID provided: ${sub}`);
  if (m[1] !== issuer.spiffeTrustDomain)
    claimsError(`spiffe ID trust domain ${m[1]} doesn't match configured trust domain ${issuer.spiffeTrustDomain}`);
  return { san: { type: 'uri', value: sub }, challenge: sub, issuer: iss, extensions: {}, subject: sub };
}

const DNS_SUBDOMAIN_RE = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

function kubernetesPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const k = claims['kubernetes.io'];
  if (!isPlainObject(k)) claimsError('identity token lacks the kubernetes.io claim');
  const ns = k.namespace;
  const sa = isPlainObject(k.serviceaccount) ? k.serviceaccount.name : undefined;
  if (typeof ns !== 'string' || !DNS_SUBDOMAIN_RE.test(ns)) claimsError('kubernetes.io claim lacks a valid namespace');
  if (typeof sa !== 'string' || !DNS_SUBDOMAIN_RE.test(sa)) claimsError('kubernetes.io claim lacks a valid serviceaccount name');
  return {
    san: { type: 'uri', value: `https://kubernetes.io/namespaces/${ns}/serviceaccounts/${sa}` },
    challenge: sub,
    issuer: iss,
    extensions: {},
    subject: sub,
  };
}

function chainguardPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  // As cosign computes the PoP subject: the email when present (and verified), else sub.
  let challenge = sub;
  if (typeof claims.email === 'string' && claims.email !== '') {
    if (!emailVerified(claims.email_verified)) claimsError('email_verified claim was false: the email address is not verified');
    challenge = claims.email;
  }
  const san = joinUrlPath(iss, sub);
  requireAbsoluteUri(san, 'subject alternative name');
  return { san: { type: 'uri', value: san }, challenge, issuer: iss, extensions: {}, subject: sub };
}
