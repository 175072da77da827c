// What every console scenario shares: Debian's chromium through playwright-core (both installed by scripts/test.sh),
// a signed-in page, screenshots kept under the test results, and one RESULT line the C# test reads.
// A scenario is `scenario(async ({ page, shot, step, env }) => result)`; it fails by throwing.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const { chromium } = await import(pathToFileURL(join(env.AGENTRY_PLAYWRIGHT, 'index.mjs')).href);

export const base = env.AGENTRY_URL;

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Waits until fn() is truthy (polled), failing with message after timeout ms. */
export async function eventually(fn, message, timeout = 30000) {
  const until = Date.now() + timeout;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${message} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/** Signs in through the console's own form. */
export async function signIn(page, email = env.AGENTRY_EMAIL, password = env.AGENTRY_PASSWORD) {
  await page.goto(`${base}/console/`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('body[data-ready="overview"]').waitFor();
}

/** Opens a section (#/name...) and waits until its first data is on screen. */
export async function open(page, hash, ready = hash.replace(/^#\//, '').split(/[/?]/)[0]) {
  const url = `${base}/console/${hash}`;
  // The mark of the page shown now goes first, so the wait below is for the page asked for.
  await page.evaluate(() => { delete document.body.dataset.ready; }).catch(() => {});
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await page.locator(`body[data-ready="${ready}"]`).waitFor();
}

export async function scenario(name, body, { signedIn = true, viewport = { width: 1280, height: 900 } } = {}) {
  const directory = env.AGENTRY_SCREENSHOTS;
  mkdirSync(directory, { recursive: true });
  const browser = await chromium.launch({ executablePath: env.AGENTRY_CHROMIUM, args: ['--no-sandbox'], headless: true });
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const consoleErrors = [];
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const shots = [];
  const shot = async (label) => {
    const file = `${name}-${label}.png`;
    await page.screenshot({ path: join(directory, file), fullPage: true });
    shots.push(file);
    console.log(`screenshot ${file}`);
  };
  const step = (text) => console.log(`step: ${text}`);
  let code = 0;
  try {
    if (signedIn) {
      step('sign in');
      await signIn(page);
    }
    const result = await body({ page, context, shot, step, env });
    console.log(`RESULT ${JSON.stringify({ ...(result ?? {}), screenshots: shots })}`);
  } catch (error) {
    code = 1;
    console.log(`FAILED: ${error.stack ?? error}`);
    if (consoleErrors.length) console.log(`browser errors:\n${consoleErrors.join('\n')}`);
    await page.screenshot({ path: join(directory, `${name}-failure.png`), fullPage: true }).catch(() => {});
    // The page's own content (the navigation around it says little), its end kept: statuses and errors are there.
    const text = await page.locator('main').innerText().catch(() => '');
    console.log(`page text at failure:\n${text.length > 3000 ? `…${text.slice(-3000)}` : text}`);
  } finally {
    await browser.close();
  }
  process.exit(code);
}
