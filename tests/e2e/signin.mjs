// Sign-in: a wrong password shows the server's own error; the right one opens the overview; the session is cookies
// that script cannot read (no token in storage); sign-out revokes it, so the old cookie no longer works.
import { scenario, base, check } from './lib.mjs';

await scenario('signin', async ({ page, context, shot, step, env }) => {
  step('wrong password');
  await page.goto(`${base}/console/`);
  await page.getByLabel('Email').fill(env.AGENTRY_EMAIL);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'The email or password is wrong.' }).waitFor();
  await shot('refused');

  step('right password, with the keyboard only');
  await page.getByLabel('Email').fill('');
  await page.getByLabel('Email').focus();
  await page.keyboard.type(env.AGENTRY_EMAIL);
  await page.keyboard.press('Tab');
  await page.keyboard.type(env.AGENTRY_PASSWORD);
  await page.keyboard.press('Enter');
  await page.locator('body[data-ready="overview"]').waitFor();
  await page.getByRole('heading', { name: 'Tasks by status' }).waitFor();
  await shot('overview');

  step('the sections are reachable from the keyboard');
  await page.reload();
  await page.locator('body[data-ready="overview"]').waitFor();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.textContent) === 'Skip to content', 'the first stop is the skip link');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.textContent) === 'Agents', 'the section links follow');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/agents$/);
  await page.goto(`${base}/console/#/overview`);
  await page.locator('body[data-ready="overview"]').waitFor();

  const cookies = await context.cookies();
  const access = cookies.find((c) => c.name === 'agentry_access');
  check(access && access.httpOnly && access.sameSite === 'Strict', `the access cookie is HttpOnly and SameSite=Strict: ${JSON.stringify(access)}`);
  check(cookies.find((c) => c.name === 'agentry_refresh')?.path === '/connect', 'the refresh cookie is sent to /connect only');
  const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));
  check(!/eyJ|agentry_access|agentry_refresh/.test(stored), `no token is readable by script: ${stored}`);

  step('an unsafe call without the CSRF header is refused');
  const forged = await page.evaluate(async () => (await fetch('/api/v1/agents', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
  check(forged === 403, `a POST without X-Agentry-Csrf answered ${forged}`);

  step('sign out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Agentry' }).waitFor();
  await shot('signed-out');
  // The revoked access token, put back by hand, is refused.
  await context.addCookies([{ ...access }]);
  const status = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  check(status === 401, `the revoked session's access token answered ${status}`);
  return { revokedStatus: status };
}, { signedIn: false });
