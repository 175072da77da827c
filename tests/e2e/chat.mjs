// Chat, from the form's conversations: with the tiny llama.cpp model given a long window (its replies run to 4,096
// tokens) and a knowledge collection, a reply seen streaming in (its text grows over several DOM changes), stopped, with
// the document its prompt held shown as a source; a reply still being written when the page is reloaded, followed live
// to its end, and the conversation renamed; a reply whose connection is reset mid-stream (the page talks to the server
// through a proxy that can cut every open connection) followed to its end from the event log; then with the tiny model
// as it is (128-token replies), a reply that streams in and completes with its token usage. The C# test then reads the
// conversations through the API and compares them with what the page showed.
// Env: AGENTRY_CUT_URL (POST: the proxy resets its connections).
import { scenario, check, eventually, open } from './lib.mjs';

/** Records the last assistant message's text length and status on every change of the message log. */
const watch = (page) => page.evaluate(() => {
  const log = document.querySelector('.messages');
  window.replyObservations = [];
  window.replyWatcher?.disconnect();
  window.replyWatcher = new MutationObserver(() => {
    const reply = [...log.querySelectorAll('article.message.assistant')].at(-1);
    if (reply) window.replyObservations.push({ length: reply.querySelector('.message-text').textContent.length, status: reply.dataset.status, at: Math.round(performance.now()) });
  });
  window.replyWatcher.observe(log, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-status'] });
});

const observations = (page) => page.evaluate(() => window.replyObservations);

/** The distinct non-empty lengths the reply had while it was still being generated. */
const growth = (seen) => [...new Set(seen.filter((o) => o.status === 'generating' && o.length > 0).map((o) => o.length))];

/** Waits until the reply being generated has been seen at three lengths; returns the observations. */
const grewWhileGenerating = (page, when) => eventually(async () => {
  const seen = await observations(page);
  return growth(seen).length >= 3 && seen.at(-1).status === 'generating' && seen;
}, `the long reply grew over three observations ${when}`);

const lastReply = (page) => page.locator('article.message.assistant').last();

async function reply(page) {
  const element = lastReply(page);
  return {
    id: await element.getAttribute('data-message-id'),
    status: await element.getAttribute('data-status'),
    text: await element.locator('.message-text').textContent(),
  };
}

async function start(page, { title, model, collection }) {
  await open(page, '#/chat');
  await page.getByLabel('Title (optional)').fill(title);
  await page.getByLabel('Model or agent').selectOption({ label: model });
  if (collection) await page.getByRole('checkbox', { name: collection }).check();
  await page.getByRole('button', { name: 'Start conversation' }).click();
  await page.waitForURL(/#\/chat\/[0-9a-f-]{36}$/);
  await page.locator('body[data-ready="chat"]').waitFor();
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
  return page.url().split('/').at(-1);
}

await scenario('chat', async ({ page, shot, step, env }) => {
  step('a conversation with the long-window model and the knowledge collection');
  const longId = await start(page, { title: 'Stop check', model: env.AGENTRY_LONG_MODEL, collection: env.AGENTRY_COLLECTION });
  check(await page.getByText('No messages yet').isVisible(), 'a new conversation says it has no messages');

  step('a long reply streams in, and Stop cancels it');
  await watch(page);
  await page.getByLabel('Message', { exact: true }).fill(`What does ${env.AGENTRY_PHRASE} say?`);
  await page.getByRole('button', { name: 'Send' }).click();
  const before = await grewWhileGenerating(page, 'while it was being generated');
  await page.getByRole('button', { name: 'Stop' }).click();
  const ended = await eventually(async () => {
    const status = await lastReply(page).getAttribute('data-status');
    return status !== 'generating' && status;
  }, 'the reply ended after Stop');
  check(ended === 'cancelled', `Stop cancels the reply (it ended ${ended}, ${growth(before).length} lengths seen before Stop)`);
  await page.getByRole('status').filter({ hasText: 'Reply stopped' }).waitFor();
  const stopped = { conversationId: longId, observedLengths: growth(before).length, ...(await reply(page)) };
  check(stopped.text.length >= Math.max(...growth(before)), 'the stopped reply keeps what streamed in');
  step('its sources name the document');
  await lastReply(page).locator('.citations').getByRole('link', { name: env.AGENTRY_DOCUMENT }).first().waitFor();
  await shot('stopped');

  step('a reply being written when the page is reloaded is followed to its end');
  await page.getByLabel('Message', { exact: true }).fill('the quick brown fox');
  const secondSent = Date.now();
  await page.getByRole('button', { name: 'Send' }).click();
  const second = page.locator('article.message.assistant').nth(1);
  await eventually(async () => ((await second.locator('.message-text').textContent()) ?? '').length > 0, 'the second long reply started');
  await page.reload();
  await page.locator('body[data-ready="chat"]').waitFor();
  const generatingOnOpen = await lastReply(page).getAttribute('data-status');
  const reloadedAfter = Date.now() - secondSent;
  await watch(page);
  await page.locator('article.message.assistant[data-status="complete"]').last().waitFor({ timeout: 60000 });
  const completedAfter = Date.now() - secondSent;
  const followed = growth(await observations(page));
  check(generatingOnOpen === 'generating', `the reloaded page showed the reply still being written (it was ${generatingOnOpen})`);
  check(followed.length > 1, `the reloaded page showed the reply growing: ${followed}`);
  await page.getByRole('status').filter({ hasText: 'Reply complete' }).waitFor();
  const reopened = { conversationId: longId, generatingOnOpen, observedLengths: followed.length, reloadedAfter, completedAfter, ...(await reply(page)) };

  step('rename the conversation');
  await page.getByLabel('Title (empty for none)').fill('  Stopped and followed ');
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('status').filter({ hasText: 'Renamed.' }).waitFor();
  await page.getByRole('heading', { level: 1, name: 'Stopped and followed' }).waitFor();
  check(await page.title() === 'Stopped and followed · Chat · Agentry', `the window title follows the new name (it is ${await page.title()})`);
  await page.getByLabel('Title (empty for none)').fill('x'.repeat(200) + 'y');
  check(await page.getByLabel('Title (empty for none)').inputValue() === 'x'.repeat(200), 'the title field holds at most 200 characters, as the API does');
  await page.getByLabel('Title (empty for none)').fill('Stopped and followed');

  step('the connection drops under a streaming reply: the page follows the rest from the log');
  const cutId = await start(page, { title: 'Cut check', model: env.AGENTRY_LONG_MODEL });
  await watch(page);
  await page.getByLabel('Message', { exact: true }).fill('the lazy dog');
  await page.getByRole('button', { name: 'Send' }).click();
  const beforeCut = await grewWhileGenerating(page, 'before the cut');
  // Every connection the browser has open to the server is reset (a network that drops), the POST's stream among them.
  const cut = await (await fetch(env.AGENTRY_CUT_URL, { method: 'POST' })).json();
  const lengthAtCut = Math.max(...growth(beforeCut));
  check(cut.cut >= 1, `the proxy reset the open connections (${cut.cut})`);
  await page.locator('article.message.assistant[data-status="complete"]').waitFor({ timeout: 60000 });
  const afterCut = growth(await observations(page)).filter((length) => length > lengthAtCut);
  check(afterCut.length > 1, `the reply kept growing on the page after the cut: ${afterCut}`);
  await page.getByRole('status').filter({ hasText: 'Reply complete' }).waitFor();
  const cutReply = { conversationId: cutId, connectionsCut: cut.cut, lengthAtCut, growthAfterCut: afterCut.length, ...(await reply(page)) };

  step('a conversation with the tiny model');
  const conversationId = await start(page, { title: 'Streaming check', model: env.AGENTRY_MODEL });

  step('send a message and watch the reply stream in');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  // Its 128 tokens take the tiny model about a tenth of a second, which can reach the page in as few as two pieces;
  // over a connection of 10 KB/s (each delta event is some 160 bytes) they arrive over about two seconds.
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 10 * 1024, uploadThroughput: -1 });
  await watch(page);
  const question = 'hello, who are you?';
  await page.getByLabel('Message', { exact: true }).fill(question);
  const sent = Date.now();
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('article.message.assistant[data-status="complete"]').waitFor();
  const took = Date.now() - sent;
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const seen = await observations(page);
  const lengths = growth(seen);
  check(lengths.length >= 5, `the reply grew over several observations before it completed: ${JSON.stringify(seen)}`);
  const streamed = await reply(page);
  check(streamed.text.length >= Math.max(...lengths), 'the finished reply holds all that streamed in');
  await page.getByRole('status').filter({ hasText: /Reply complete · \d+ prompt \+ \d+ reply tokens/ }).waitFor();
  const user = page.locator('article.message.user').last();
  check((await user.locator('.message-text').textContent()) === question, 'the user message is shown as sent');
  await lastReply(page).locator('.usage').filter({ hasText: /\d+ prompt \+ \d+ reply tokens/ }).waitFor();
  await shot('conversation');

  step('the conversation list');
  await open(page, '#/chat');
  await page.getByRole('link', { name: 'Streaming check' }).waitFor();
  await shot('list');
  await page.getByRole('link', { name: 'Streaming check' }).click();
  await page.locator('body[data-ready="chat"]').waitFor();
  check((await reply(page)).text === streamed.text, 'the reopened conversation shows the same reply');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('conversation-narrow');

  step('delete a conversation');
  await page.setViewportSize({ width: 1280, height: 900 });
  const deletedId = await start(page, { title: 'Throwaway', model: env.AGENTRY_MODEL });
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete conversation' }).click();
  await page.waitForURL(/#\/chat$/);
  await page.locator('body[data-ready="chat"]').waitFor();
  await page.getByRole('link', { name: 'Streaming check' }).waitFor();
  check(await page.getByRole('link', { name: 'Throwaway' }).count() === 0, 'the deleted conversation left the list');

  return { conversationId, question, reply: streamed, observedLengths: lengths.length, replyMilliseconds: took, stopped, reopened, cutReply, deletedId };
});
