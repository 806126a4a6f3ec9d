// Sign-in with the host's OIDC provider: the authorization-code flow with
// PKCE (RFC 7636) for a public client. The page sends the person to the
// provider's authorization endpoint; the provider sends them back to `/`
// with a code, which the page exchanges at the token endpoint for a token,
// then used as the bearer token like an API key. The verifier and state
// live in this tab's session storage between the two pages.

import type { Schemas } from './api';

export type OidcSignIn = Schemas['OidcSignIn'];

const PENDING = 'weft.oidc';

interface Pending {
  state: string;
  verifier: string;
  redirect: string;
  config: OidcSignIn;
}

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** The page's own address without query or fragment: the redirect URI. */
function redirectUri(): string {
  return `${location.origin}/`;
}

/** Sends the browser to the provider. Needs a secure context (https, or localhost). */
export async function startSignIn(config: OidcSignIn): Promise<void> {
  if (!window.isSecureContext || !crypto.subtle) {
    throw new Error('signing in with the OIDC provider needs https (or localhost): this page is not a secure context');
  }
  const verifier = random(32);
  const state = random(16);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const pending: Pending = { state, verifier, redirect: redirectUri(), config };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(config.authorizationEndpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', pending.redirect);
  url.searchParams.set('scope', config.scopes);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', base64url(digest));
  url.searchParams.set('code_challenge_method', 'S256');
  location.assign(url.toString());
}

/** Whether this page load is the provider sending the person back. */
export function isReturn(): boolean {
  const q = new URLSearchParams(location.search);
  return q.has('state') && (q.has('code') || q.has('error'));
}

/**
 * Finishes a sign-in the provider sent back: checks the state, exchanges
 * the code and returns the token. The query leaves the address bar either
 * way, so a reload does not repeat it.
 */
export async function finishSignIn(): Promise<string> {
  const q = new URLSearchParams(location.search);
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  const saved = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (!saved) throw new Error('the sign-in was not started from this tab: start it again');
  const pending = JSON.parse(saved) as Pending;
  if (q.get('state') !== pending.state) throw new Error('the sign-in answer does not match the sign-in started here: start it again');
  const error = q.get('error');
  if (error) {
    const detail = q.get('error_description');
    throw new Error(`the provider refused the sign-in: ${error}${detail ? ` (${detail})` : ''}`);
  }
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: q.get('code') ?? '',
    redirect_uri: pending.redirect,
    client_id: pending.config.clientId,
    code_verifier: pending.verifier,
  });
  let answer: Response;
  try {
    answer = await fetch(pending.config.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body,
    });
  } catch (e) {
    throw new Error(
      `the provider's token endpoint did not answer (${e instanceof Error ? e.message : String(e)}); it must allow this origin by CORS`,
    );
  }
  const json = (await answer.json().catch(() => ({}))) as Record<string, unknown>;
  if (!answer.ok) {
    const why = typeof json.error === 'string' ? json.error : `HTTP ${answer.status}`;
    const detail = typeof json.error_description === 'string' ? ` (${json.error_description})` : '';
    throw new Error(`the provider did not give a token: ${why}${detail}`);
  }
  const token = json[pending.config.token];
  if (typeof token !== 'string' || !token) {
    throw new Error(`the provider's answer has no ${pending.config.token}`);
  }
  return token;
}
