// Drives examples/nextjs in Debian's Chromium through the proxy: sign up, add
// two todos, complete one, reload, sign out (the protected page then sends you
// to sign in), a wrong password, another user who sees none of the first
// one's todos; with FRONTEND_CASES=1 also the access cookie expiring (renewed
// from the session), the session lost (cookies cleared)
// while on the page, and sign-in attempts until the proxy's rate limit shows
// its wait. Prints one JSON line with what it saw; exits non-zero on failure.
// Env: BASE_URL, SCREENSHOT_DIR, SHOT_PREFIX, CHROMIUM, OTHER_EMAIL,
// OTHER_PASSWORD, FRONTEND_CASES, ACCESS_TTL_MS (the stack's JWT_TTL).
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOT_DIR;
const prefix = process.env.SHOT_PREFIX || 'nextjs';
const password = 'correct horse battery staple';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const out = { steps: [] };
const step = (s) => out.steps.push(s);
const titles = (page) => page.$$eval('ul.todos li', (lis) => lis.map((li) => ({
  title: li.querySelector('span').textContent, done: li.querySelector('input[type=checkbox]').checked })));
// p.error, not any [role=alert]: Next.js's route announcer is one too.
const alertText = async (page) => (await page.locator('p.error').textContent()).trim();

async function signIn(page, email, pw) {
  await page.goto(base + '/sign-in');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', pw);
  await page.click('button[type=submit]');
}

try {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(15000);

  await page.goto(base + '/');
  await page.waitForURL('**/sign-in');
  step('anonymous visitor sent to sign-in');

  await page.goto(base + '/sign-up');
  const email = `next-${Date.now()}@example.com`;
  await page.fill('[name=name]', 'Next User');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/todos');
  await page.waitForSelector('p.empty');
  step('signed up');

  for (const title of ['buy milk', 'walk the dog']) {
    await page.fill('[name=title]', title);
    await page.press('[name=title]', 'Enter');
    await page.waitForSelector(`ul.todos li:has-text("${title}")`);
  }
  step('added two');
  await page.locator('ul.todos li', { hasText: 'buy milk' }).locator('input[type=checkbox]').click(); // controlled: it flips when the PATCH answers
  await page.waitForSelector('ul.todos li.done:has-text("buy milk")');
  step('completed one');

  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('ul.todos li').length === 2);
  out.afterReload = await titles(page);
  out.cookiesVisibleToScript = await page.evaluate(() => document.cookie);
  out.storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  await page.screenshot({ path: join(shots, `${prefix}-todos.png`), fullPage: true });
  step('reloaded');

  await page.click('text=Sign out');
  await page.waitForURL('**/sign-in?signedOut=1');
  await page.goto(base + '/todos');
  await page.waitForURL('**/sign-in');
  step('signed out; the todo page sends us to sign in');

  await signIn(page, email, 'wrong password entirely');
  await page.waitForSelector('p.error');
  out.wrongPasswordMessage = await alertText(page);
  step('wrong password');

  await signIn(page, process.env.OTHER_EMAIL, process.env.OTHER_PASSWORD);
  await page.waitForURL('**/todos');
  await page.waitForSelector('p.empty, ul.todos li');
  out.otherUserTodos = (await titles(page)).map((t) => t.title);
  step('other user signed in');
  await page.click('text=Sign out');
  await page.waitForURL('**/sign-in?signedOut=1');

  if (process.env.FRONTEND_CASES === '1') await frontendCases(page, ctx, email);

  out.consoleErrors = consoleErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);

// What the frontend does whatever the backend (FRONTEND_CASES=1, run once):
// the session lost while the page is open, and the rate limit's wait.
async function frontendCases(page, ctx, email) {
  // The access cookie expires (JWT_TTL is a few seconds in this run) while
  // the session lives: the app renews it from /api/auth/token and carries on.
  await signIn(page, email, password);
  await page.waitForSelector('ul.todos li');
  await page.waitForTimeout(Number(process.env.ACCESS_TTL_MS || 0) + 1000);
  await page.fill('[name=title]', 'after the access cookie expired');
  await page.press('[name=title]', 'Enter');
  await page.waitForSelector('ul.todos li:has-text("after the access cookie expired")');
  out.renewedOnPage = new URL(page.url()).pathname;
  step('access cookie renewed');

  // The session is lost while the page is open (both cookies gone, as when
  // the session has expired): the next API call says so and asks to sign in.
  await ctx.clearCookies();
  await page.fill('[name=title]', 'after expiry');
  await page.press('[name=title]', 'Enter');
  await page.waitForURL('**/sign-in?expired=1');
  out.expiredMessage = (await page.locator('p.notice').textContent()).trim();
  step('session expired');

  // Wrong passwords until the proxy's sign-in limit answers 429.
  await signIn(page, email, 'wrong 0');
  for (let i = 1; i < 30; i++) {
    await page.waitForSelector('p.error');
    const msg = await alertText(page);
    if (/try again in \d+ seconds/i.test(msg)) {
      out.rateLimitedMessage = msg;
      break;
    }
    await page.fill('[name=password]', `wrong ${i}`);
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/auth/sign-in/email')),
      page.click('button[type=submit]'),
    ]);
  }
  await page.screenshot({ path: join(shots, `${prefix}-rate-limited.png`), fullPage: true });
  step('rate limited');
}
