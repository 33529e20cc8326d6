// Drives the demo frontend in Debian's Chromium through the proxy, as a person
// would: sign up, add two todos, complete one, reload and see them, sign out,
// sign in as another user and see none of them. Prints one JSON line with what
// it saw; exits non-zero on any failure. Playwright gives Chromium a fresh
// temporary profile of its own. Env: BASE_URL, SCREENSHOT_DIR,
// OTHER_EMAIL/OTHER_PASSWORD (an account the Go test created).
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOT_DIR;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const out = { steps: [] };
const step = (s) => out.steps.push(s);
try {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(10000);

  // The first list after sign-up is held back 800 ms after the server has
  // answered it (the slow first load a busy machine produced once): a todo
  // added meanwhile must not be wiped when that older list arrives.
  let heldBack = false;
  await page.route('**/api/v1/todos?limit=100', async (route) => {
    if (heldBack) return route.continue();
    heldBack = true;
    const resp = await route.fetch();
    await new Promise((r) => setTimeout(r, 800));
    await route.fulfill({ response: resp });
  });

  await page.goto(base + '/');
  const email = `browser-${Date.now()}@example.com`;
  await page.fill('#signup-form [name=name]', 'Browser User');
  await page.fill('#signup-form [name=email]', email);
  await page.fill('#signup-form [name=password]', 'correct horse battery staple');
  await page.click('#signup-form [type=submit]');
  await page.waitForFunction((e) => document.querySelector('#whoami')?.textContent.includes(e), email);
  step('signed up');

  for (const title of ['buy milk', 'walk the dog']) {
    await page.fill('#todo-form [name=title]', title);
    await page.press('#todo-form [name=title]', 'Enter');
    await page.waitForFunction((t) => [...document.querySelectorAll('#todo-list li[data-id]')].some((li) => li.textContent.includes(t)), title);
  }
  await page.waitForTimeout(1000); // past the held-back first list
  const shown = await page.$$eval('#todo-list li[data-id]', (lis) => lis.length);
  if (!heldBack || shown !== 2) throw new Error(`after adding two todos the page shows ${shown} (first list held back: ${heldBack})`);
  step('added two');
  const first = page.locator('#todo-list li[data-id]', { hasText: 'buy milk' });
  await first.locator('input[type=checkbox]').check();
  await page.waitForTimeout(300);
  step('completed one');

  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#todo-list li[data-id]').length === 2);
  out.afterReload = await page.$$eval('#todo-list li[data-id]', (lis) => lis.map((li) => ({
    title: li.textContent.trim(), done: li.querySelector('input[type=checkbox]').checked })));
  out.cookiesVisibleToScript = await page.evaluate(() => document.cookie);
  out.localStorage = await page.evaluate(() => JSON.stringify(localStorage));
  await page.screenshot({ path: join(shots, 'demo-signed-in.png'), fullPage: true });
  step('reloaded');

  await page.click('#signout');
  await page.waitForSelector('#signin-form', { state: 'visible' });
  step('signed out');

  await page.fill('#signin-form [name=email]', process.env.OTHER_EMAIL);
  await page.fill('#signin-form [name=password]', 'wrong password!');
  await page.click('#signin-form [type=submit]');
  await page.waitForFunction(() => (document.querySelector('#error')?.textContent || '').length > 0);
  out.wrongPasswordMessage = (await page.textContent('#error')).trim();
  step('wrong password shown');

  await page.fill('#signin-form [name=password]', process.env.OTHER_PASSWORD);
  await page.click('#signin-form [type=submit]');
  await page.waitForFunction((e) => document.querySelector('#whoami')?.textContent.includes(e), process.env.OTHER_EMAIL);
  await page.waitForTimeout(500);
  out.otherUserTodos = await page.$$eval('#todo-list li[data-id]', (lis) => lis.map((li) => li.textContent.trim()));
  await page.screenshot({ path: join(shots, 'demo-other-user.png'), fullPage: true });
  step('other user');
  out.consoleErrors = consoleErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
