import { defineConfig } from '@playwright/test';
import { ADMIN, ADMIN_PORT, COMMAND, PAGE, PAGE_PORT, SERVER_LOG } from './server';

export default defineConfig({
  testDir: 'tests',
  // One server, one database: a test's POST /reset must not land in the middle of another test.
  workers: 1,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  use: {
    baseURL: PAGE,
    ignoreHTTPSErrors: true, // the API's certificate is --ephemeral's throwaway dev certificate
    // Debian's chromium, not a download (CHROMIUM=/path/to/chrome for another one).
    launchOptions: { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' },
  },
  webServer: {
    command:
      `${COMMAND} serve --bind 127.0.0.1:0 --ephemeral --access-log` +
      ` --test-support --test-support-bind 127.0.0.1:${ADMIN_PORT}` +
      ` --demo-page-bind 127.0.0.1:${PAGE_PORT} 2> "${SERVER_LOG}"`,
    url: `${ADMIN}/requests`, // only a --test-support server answers there
    gracefulShutdown: { signal: 'SIGTERM', timeout: 5000 }, // so --ephemeral removes its files
  },
});
