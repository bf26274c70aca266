// Where the server under test answers. Playwright's webServer waits for a URL, so the admin bind
// and the page have fixed ports, each changeable by env (tests/api/playwright.rs picks free ones);
// the API takes any free port, and the page knows which.
import path from 'node:path';

const port = (name: string, otherwise: number) => Number(process.env[name] ?? otherwise);
export const ADMIN_PORT = port('ADMIN_PORT', 8449);
export const PAGE_PORT = port('PAGE_PORT', 4200);

/** --test-support-bind: POST /reset, GET /requests (plain HTTP, loopback only). */
export const ADMIN = `http://127.0.0.1:${ADMIN_PORT}`;
/** The demo page, standing in for your frontend: it calls the API from another origin. */
export const PAGE = `http://localhost:${PAGE_PORT}`;
/** The server's log (its stderr), with an access-log line per request. */
export const SERVER_LOG = path.join(__dirname, 'server.log');
/** The program: `delivery-api` on PATH (`cargo install --path . --locked`), or DELIVERY_API=/path/to/it. */
export const COMMAND = process.env.DELIVERY_API ?? 'delivery-api';
