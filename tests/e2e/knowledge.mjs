// Knowledge: a collection created from the form; two small text files uploaded at once through the file input, watched
// through their ingestion steps to ready; a search for a phrase that only one of them holds finds it by hybrid, vector
// and keyword search; the other document is deleted. The C# test then checks the same through the API.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scenario, check, eventually, open } from './lib.mjs';

await scenario('knowledge', async ({ page, shot, step, env }) => {
  const phrase = env.AGENTRY_PHRASE;
  const directory = mkdtempSync(join(tmpdir(), 'agentry-knowledge-'));
  const kept = join(directory, 'observatory-log.txt');
  const dropped = join(directory, 'scratch-notes.md');
  writeFileSync(kept, `Observatory log\n\nOn the third night the ${phrase} was seen over the eastern ridge, twice, before the clouds came in.\n`);
  writeFileSync(dropped, '# Scratch notes\n\nNothing here matters; this file is deleted again.\n');

  step('create a collection');
  await open(page, '#/knowledge');
  await page.getByLabel('Name', { exact: true }).fill(env.AGENTRY_COLLECTION);
  await page.getByLabel('Description (optional)').fill('Made by the console test');
  await page.getByRole('button', { name: 'Create collection' }).click();
  await page.waitForURL(/#\/knowledge\/[0-9a-f-]{36}$/);
  await page.locator('body[data-ready="knowledge"]').waitFor();
  await page.getByRole('heading', { level: 1, name: env.AGENTRY_COLLECTION }).waitFor();
  const collectionId = page.url().split('/').at(-1);
  await page.getByText('No documents yet').waitFor();

  step('upload two files at once and watch their ingestion steps');
  // Every state a step of the kept document was seen in, as the page refreshes.
  await page.evaluate(() => {
    window.stepStates = new Set();
    new MutationObserver(() => {
      for (const step of document.querySelectorAll('tr[data-status] li.step')) window.stepStates.add(`${step.dataset.step}:${step.dataset.status}`);
    }).observe(document.querySelector('main'), { subtree: true, childList: true });
  });
  await page.getByLabel(/^Files/).setInputFiles([kept, dropped]);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByText('observatory-log.txt: added, ingesting.').waitFor();
  await page.getByText('scratch-notes.md: added, ingesting.').waitFor();
  const row = page.locator('tr', { hasText: 'observatory-log.txt' });
  await row.locator('li.step').first().waitFor();
  await row.and(page.locator('[data-status="ready"]')).waitFor({ timeout: 60000 });
  await page.locator('tr', { hasText: 'scratch-notes.md' }).and(page.locator('[data-status="ready"]')).waitFor({ timeout: 60000 });
  const states = await page.evaluate(() => [...window.stepStates]);
  check(['extract', 'chunk', 'embed', 'index'].every((s) => states.includes(`${s}:done`)), `every step was shown done: ${states}`);
  check(states.some((s) => !s.endsWith(':done')), `steps were shown before they were done: ${states}`);
  const chunks = Number(await row.locator('td').nth(3).textContent());
  check(chunks > 0, 'the ready document has chunks');
  await page.getByRole('status').filter({ hasText: '2 of 2 shown ready' }).waitFor();
  await shot('collection');

  step('search for the phrase in three modes');
  const found = {};
  for (const [mode, label] of [['hybrid', 'Hybrid (vector and keyword)'], ['vector', 'Vector'], ['keyword', 'Keyword']]) {
    await page.getByLabel('Search for').fill(phrase);
    await page.getByRole('radio', { name: label, exact: true }).check();
    await page.getByRole('button', { name: 'Search' }).click();
    const hits = page.locator(`ol.hits[data-mode="${mode}"]`);
    await hits.waitFor();
    const first = hits.locator('li.hit').first();
    found[mode] = {
      document: await first.locator('strong').textContent(),
      text: await first.locator('blockquote').textContent(),
      score: await first.locator('.hit-head').textContent(),
    };
    check(found[mode].document === 'observatory-log.txt', `${mode} search ranks the document first: ${JSON.stringify(found[mode])}`);
    check(found[mode].text.includes(phrase), `${mode} search shows the chunk with the phrase`);
    check(/score \d/.test(found[mode].score), `${mode} search shows a score`);
    if (mode === 'hybrid') await shot('search');
  }

  step('delete the other document');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete scratch-notes.md' }).click();
  await eventually(async () => (await page.locator('tr', { hasText: 'scratch-notes.md' }).count()) === 0, 'the deleted document left the list');
  await page.getByRole('status').filter({ hasText: '1 of 1 shown ready' }).waitFor();

  step('the collection list');
  await open(page, '#/knowledge');
  await page.getByRole('link', { name: env.AGENTRY_COLLECTION }).waitFor();
  await shot('collections');
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page, `#/knowledge/${collectionId}`);
  await page.locator('tr', { hasText: 'observatory-log.txt' }).waitFor();
  await shot('collection-narrow');

  step('the collection and its documents in the audit log');
  await page.setViewportSize({ width: 1280, height: 900 });
  await open(page, '#/admin/audit?action=collection.', 'admin');
  await page.getByRole('row').filter({ hasText: 'collection.created' }).filter({ hasText: collectionId }).first().waitFor();
  await open(page, '#/admin/audit?action=document.', 'admin');
  await page.getByRole('row').filter({ hasText: 'document.added' }).first().waitFor();
  await page.getByRole('row').filter({ hasText: 'document.deleted' }).first().waitFor();
  await shot('audit-documents');

  return { collectionId, chunks, found, states };
});
