import { InjectionToken } from '@angular/core';

/** The API's origin, e.g. `https://localhost:8443` (no trailing slash). */
export const API_BASE = new InjectionToken<string>('API_BASE');

/** Where `delivery-api serve` listens by default (its `--bind`, over TLS). */
export const DEFAULT_API = 'https://localhost:8443';

// ANCHOR: api-base
/**
 * The API's origin: `?api=URL` when the page was opened with one, else {@link DEFAULT_API}.
 * Only loopback hosts are taken: the app sends a password there, and a link must not be able
 * to send it to another machine.
 */
export function apiBaseFrom(search: string): string {
  const wanted = new URLSearchParams(search).get('api');
  if (wanted === null) {
    return DEFAULT_API;
  }
  const url = URL.canParse(wanted) ? new URL(wanted) : null;
  if (!url || !['http:', 'https:'].includes(url.protocol)) {
    throw new Error(`?api=${wanted} is not an http(s) URL`);
  }
  if (!['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    throw new Error(`?api=${wanted}: this example only calls an API on this machine`);
  }
  return url.origin;
}
// ANCHOR_END: api-base
