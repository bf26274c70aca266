import { HttpErrorResponse } from '@angular/common/http';

// ANCHOR: explain
/**
 * What a failed call means, in words a user can act on. The wording is the demo page's
 * (src/demo_page/index.html in the repository); `detail` is the API's RFC 9457 problem detail.
 */
export function explain(e: HttpErrorResponse, api: string): string {
  const detail = typeof e.error?.detail === 'string' ? ` Detail: ${e.error.detail}` : '';
  const retryAfter = e.headers.get('Retry-After'); // readable: the API exposes it
  switch (e.status) {
    case 0:
      // The browser refused to show the response, or there was none. JavaScript is not told
      // which (by design); the browser's Console is.
      return (
        'Status 0: the browser blocked the response, so the app is not allowed to see why ' +
        '(CORS, an untrusted certificate and a wrong URL all look alike from here). Check:\n' +
        `1. the API runs: open ${api}/health in a tab;\n` +
        '2. the browser trusts its certificate: that tab shows no warning (trust certs/dev-ca.crt);\n' +
        `3. this page's origin, ${location.origin}, is one of the API's --allowed-origin;\n` +
        '4. the API answers the preflight before Basic auth: the Console then says ' +
        "\"Response to preflight request doesn't pass access control check\"."
      );
    case 401:
      return (
        '401: wrong user name or password. The app can read this status only because the API ' +
        'adds CORS headers to its 401 responses.' + detail
      );
    case 409:
      return '409: a delivery with this reference already exists.' + detail;
    case 422:
      return '422: the body is well-formed JSON but not a valid delivery.' + detail;
    case 429:
      return `429: too many failed logins; wait ${retryAfter ?? 'a few'} seconds (Retry-After).` + detail;
    case 503:
      return `503: the API's database is unavailable; retry in ${retryAfter ?? 'a few'} seconds.` + detail;
    default:
      return `Status ${e.status}.` + detail;
  }
}
// ANCHOR_END: explain
