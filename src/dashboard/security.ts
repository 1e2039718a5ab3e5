// The dashboard's guards: Host allow-list (DNS rebinding), credentials (basic or bearer), and for every
// action a POST with the page's CSRF token from the same origin. Secrets are compared in constant time.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { DashboardAuth } from './options.js';

/** The cookie a browser keeps after opening `/?token=<token>` on a bearer-protected dashboard. */
export const TOKEN_COOKIE = 'asynx_dashboard_token';
/** The header every action carries, with the token the page was served with. */
export const CSRF_HEADER = 'x-csrf-token';

/** Equal in constant time (hashes first, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** A fresh random token (CSRF), hex. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** The host part of a Host header (`[::1]:5555` → `[::1]`, `localhost:5555` → `localhost`). */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** Refuses requests whose Host header is not one of `allowed` (none given: every host passes). */
export function hostGuard(allowed: string[] | null): MiddlewareHandler {
  const set = allowed ? new Set(allowed.map((h) => hostName(h.includes(':') && !h.startsWith('[') && h.split(':').length > 2 ? `[${h}]` : h))) : null;
  return async (c, next) => {
    if (set) {
      const host = c.req.header('host');
      if (!host || !set.has(hostName(host))) return c.text('asynx dashboard: unexpected Host header (open it by its loopback address, or set allowedHosts)', 421);
    }
    await next();
  };
}

/** Checks the credentials on every request; a bearer token may also come from the cookie set by `/?token=`. */
export function authGuard(auth: DashboardAuth | null): MiddlewareHandler {
  return async (c, next) => {
    if (!auth) return next();
    const header = c.req.header('authorization') ?? '';
    if (auth.kind === 'basic') {
      const m = /^basic\s+(.+)$/i.exec(header);
      const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      if (m && sameSecret(decoded, `${auth.user}:${auth.password}`)) return next();
      c.header('WWW-Authenticate', 'Basic realm="asynx dashboard", charset="UTF-8"');
      return c.text('asynx dashboard: credentials required', 401);
    }
    const m = /^bearer\s+(.+)$/i.exec(header);
    const given = m?.[1]?.trim() ?? getCookie(c, TOKEN_COOKIE) ?? null;
    if (given !== null && sameSecret(given, auth.token)) return next();
    // `/?token=…` once: remember it in an HttpOnly cookie and drop it from the address bar.
    const query = c.req.method === 'GET' ? c.req.query('token') : undefined;
    if (query !== undefined && sameSecret(query, auth.token)) {
      setCookie(c, TOKEN_COOKIE, query, { httpOnly: true, sameSite: 'Strict', path: '/' });
      return c.redirect('./', 303);
    }
    c.header('WWW-Authenticate', 'Bearer realm="asynx dashboard"');
    return c.text('asynx dashboard: bearer token required (Authorization: Bearer <token>, or open /?token=<token> once)', 401);
  };
}

/**
 * Guards a state-changing request: it must carry the CSRF token the page was served with, and its Origin
 * (or, lacking one, its Referer) must be the Host it was sent to. A cross-site form or script has neither.
 */
export function actionGuard(csrfToken: string): MiddlewareHandler {
  return async (c, next) => {
    const token = c.req.header(CSRF_HEADER);
    if (!token || !sameSecret(token, csrfToken)) return c.json({ error: 'missing or wrong CSRF token (reload the page)' }, 403);
    const host = c.req.header('host');
    const from = c.req.header('origin') ?? c.req.header('referer');
    let fromHost: string | null = null;
    try {
      fromHost = from ? new URL(from).host : null;
    } catch {
      fromHost = null;
    }
    if (!host || !fromHost || fromHost.toLowerCase() !== host.toLowerCase()) return c.json({ error: 'cross-origin request refused (Origin does not match Host)' }, 403);
    await next();
  };
}

/** Headers that keep the page from being framed, sniffed or made to run anything but its own scripts. */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('X-Frame-Options', 'DENY');
  c.header('Referrer-Policy', 'same-origin');
  c.header('Cache-Control', 'no-store');
};
