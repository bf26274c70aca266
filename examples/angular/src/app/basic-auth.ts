import { HttpInterceptorFn } from '@angular/common/http';
import { Injectable, inject, signal } from '@angular/core';

import { API_BASE } from './api';

// ANCHOR: basic
/**
 * `Basic base64(user:password)` of the UTF-8 bytes, as RFC 7617 §2.1 asks (`charset="UTF-8"`,
 * which this API announces in `WWW-Authenticate`). `btoa()` alone takes Latin-1 only: it throws
 * on "ł" or "€" and would encode "é" as one byte the server reads as invalid UTF-8.
 */
export function basic(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return 'Basic ' + btoa(String.fromCharCode(...bytes));
}
// ANCHOR_END: basic

/** The user's credentials, kept in one place (memory only: a reload forgets them). */
@Injectable({ providedIn: 'root' })
export class Credentials {
  readonly authorization = signal<string | null>(null);

  logIn(user: string, password: string): void {
    this.authorization.set(basic(user, password));
  }
}

// ANCHOR: interceptor
/**
 * Adds `Authorization: Basic …` to the requests for the API, and to no other host. It does not
 * run for the preflight: the browser sends that itself, below Angular, without credentials; the
 * server must answer it before asking for them.
 */
export const basicAuthInterceptor: HttpInterceptorFn = (req, next) => {
  const api = inject(API_BASE);
  const authorization = inject(Credentials).authorization();
  if (authorization === null || !req.url.startsWith(api + '/')) {
    return next(req);
  }
  return next(req.clone({ setHeaders: { Authorization: authorization } }));
};
// ANCHOR_END: interceptor
