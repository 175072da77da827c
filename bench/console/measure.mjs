// Measures console pages in Chromium (see bench/console.sh): cold loads in fresh contexts that carry only the session
// cookies, timings read from the page's own performance entries.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({ options: {
  url: { type: 'string' }, baseline: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' }, runs: { type: 'string', default: '7' },
} });
const runs = Number(options.runs);
const { chromium } = await import(pathToFileURL(join(process.env.AGENTRY_PLAYWRIGHT, 'index.mjs')).href);
const browser = await chromium.launch({ executablePath: process.env.AGENTRY_CHROMIUM, args: ['--no-sandbox'], headless: true });

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

// Sign in through the console once; each measured load gets the session's cookies in a fresh context (empty cache).
const setup = await browser.newContext();
const page = await setup.newPage();
await page.goto(`${options.url}/console/`);
await page.getByLabel('Email').fill(options.email);
await page.getByLabel('Password').fill(options.password);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.locator('body[data-ready="overview"]').waitFor();
// Some data, so the pages have something to show: webhook tasks and a conversation with a reply.
await page.evaluate(async () => {
  const csrf = document.cookie.split('; ').find((c) => c.startsWith('agentry_csrf=')).slice(13);
  const post = (path, body) => fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Agentry-Csrf': csrf }, body: JSON.stringify(body) }).then((r) => r.json());
  const agent = await post('/api/v1/agents', { name: 'bench-hook', kind: 'webhook', webhook: { url: 'https://example.com/hook' } });
  for (let i = 0; i < 20; i++) await post('/api/v1/tasks', { agentId: agent.id, input: { i } });
  const conversation = await post('/api/v1/conversations', { model: 'local/tiny', title: 'bench' });
  await post(`/api/v1/conversations/${conversation.id}/messages`, { content: 'Hello there' });
});
const state = await setup.storageState();
await setup.close();

async function measure(hash, ready) {
  const context = await browser.newContext({ storageState: state });
  const tab = await context.newPage();
  let bytes = 0;
  let requests = 0;
  tab.on('requestfinished', async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) {
      bytes += sizes.responseBodySize + sizes.responseHeadersSize;
      requests += 1;
    }
  });
  await tab.goto(`${options.url}/console/${hash}`);
  await tab.locator(`body[data-ready="${ready}"]`).waitFor({ timeout: 30000 });
  await tab.waitForLoadState('networkidle');
  const timing = await tab.evaluate((name) => ({
    paint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
    interactive: performance.getEntriesByName(`console:${name}:interactive`)[0]?.startTime,
  }), ready);
  await context.close();
  return { ...timing, bytes, requests };
}

async function baseline() {
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(options.baseline);
  const paint = await tab.evaluate(() => new Promise((resolve) => {
    const found = () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime;
    const poll = () => (found() !== undefined ? resolve(found()) : setTimeout(poll, 10));
    poll();
  }));
  await context.close();
  return paint;
}

// Unmeasured: the server's and the browser's first loads.
await measure('#/overview', 'overview');
await measure('#/chat', 'chat');
await baseline();

const results = { overview: [], chat: [], baseline: [] };
for (let i = 0; i < runs; i++) {
  results.baseline.push(await baseline());
  results.overview.push(await measure('#/overview', 'overview'));
  results.chat.push(await measure('#/chat', 'chat'));
}
await browser.close();

const base = median(results.baseline);
const ms = (v) => `${v.toFixed(0)} ms`;
console.log('| page | first render | interactive | first render / baseline | weight (transferred) | requests |');
console.log('|---|---:|---:|---:|---:|---:|');
console.log(`| baseline: bare Kestrel plaintext | ${ms(base)} | | 1.00 | | 1 |`);
for (const name of ['overview', 'chat']) {
  const rows = results[name];
  const paint = median(rows.map((r) => r.paint));
  console.log(`| ${name} | ${ms(paint)} | ${ms(median(rows.map((r) => r.interactive)))} | ${(paint / base).toFixed(2)} | ${(median(rows.map((r) => r.bytes)) / 1024).toFixed(1)} KiB | ${median(rows.map((r) => r.requests))} |`);
}
console.log();
console.log(`Per run (first render / interactive, ms): ${['overview', 'chat'].map((n) => `${n} ${results[n].map((r) => `${r.paint.toFixed(0)}/${r.interactive.toFixed(0)}`).join(', ')}`).join('; ')}; baseline ${results.baseline.map((v) => v.toFixed(0)).join(', ')}.`);
