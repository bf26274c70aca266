import { readFileSync } from 'node:fs';
import { test, expect, type Page } from '@playwright/test';
import { ADMIN, SERVER_LOG } from '../server';

// Every test starts from the seed: no restart, nothing left over from the test before.
test.beforeEach(async ({ request }) => {
  const reset = await request.post(`${ADMIN}/reset`);
  expect(await reset.json()).toEqual({ deliveries: 12, users: 0 });
});

test('the page explains a 503 when the API is down', async ({ page }) => {
  // Sent on the page's calls: a header that makes them preflighted, allowed under --test-support.
  await page.setExtraHTTPHeaders({ Prefer: 'code=503' });
  await page.goto('/');

  const answer = await loadDeliveries(page);

  await expect(page.locator('#status')).toHaveText('Status 503');
  await expect(page.locator('#explanation')).toContainText('retry shortly');
  expect(answer.headers()['preference-applied']).toBe('code=503'); // injected, not a real outage
});

test('the page shows the call in progress while the API is slow', async ({ page }) => {
  await page.setExtraHTTPHeaders({ Prefer: 'delay=1000' });
  await page.goto('/');

  const answer = loadDeliveries(page);

  await expect(page.locator('#outcome')).toHaveAttribute('data-state', 'pending');
  await expect(page.locator('#outcome')).toHaveAttribute('data-state', 'done');
  await expect(page.locator('#status')).toHaveText('Status 200');
  expect((await answer).headers()['preference-applied']).toBe('delay=1000');
});

test('the server saw the page call once, under the id the page sent', async ({ page, request }, testInfo) => {
  const id = `e2e-${testInfo.testId}`;
  await page.setExtraHTTPHeaders({ 'X-Request-Id': id });
  await page.goto('/');

  await loadDeliveries(page);

  await expect(page.locator('#deliveries tbody tr')).toHaveCount(12); // the seed, after the reset
  // The request log (--test-support): what the API answered under that id.
  const seen: Logged[] = await (await request.get(`${ADMIN}/requests?request_id=${id}`)).json();
  expect(seen.map((r) => `${r.method} ${r.path} ${r.status} ${r.answered_by}`))
    .toEqual(['GET /delivery/all 200 handler']);
  // The access log (--access-log, in server.log): the server's own line, with the same id.
  await expect.poll(() => accessLog(id)).toEqual([expect.stringContaining('GET /delivery/all 200')]);
});

/** Clicks the page's "GET /delivery/all"; returns the API's answer to it. */
async function loadDeliveries(page: Page) {
  const answer = page.waitForResponse((r) => r.url().endsWith('/delivery/all') && r.request().method() === 'GET');
  await page.getByRole('button', { name: 'GET /delivery/all' }).click();
  return answer;
}

/** An entry of GET /requests (docs/test-support.md, "The request log"). */
type Logged = { method: string; path: string; status: number; answered_by: string };

/** The server's access-log lines for one request id. */
function accessLog(id: string): string[] {
  return readFileSync(SERVER_LOG, 'utf8')
    .split('\n')
    .filter((line) => line.includes('delivery_api::access') && line.includes(`request_id=${id}`));
}
