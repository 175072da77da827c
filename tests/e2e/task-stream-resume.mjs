// A task's live timeline survives a network drop: the browser goes offline while the task runs, events happen that it
// cannot receive, and once it is back online the stream resumes after the last event shown (Last-Event-ID), so the
// timeline ends with every event of the task exactly once.
// Env: AGENTRY_AGENT_NAME (a webhook agent whose first call hangs: the task's first attempt lasts its 4 s limit).
import { scenario, base, check, eventually, open } from './lib.mjs';

await scenario('task-stream-resume', async ({ page, context, shot, step, env }) => {
  const name = env.AGENTRY_AGENT_NAME;

  step('submit a task');
  await open(page, '#/tasks');
  const form = page.getByRole('region', { name: 'Submit a task' });
  await form.getByLabel('Agent').selectOption({ label: `${name} (webhook)` });
  await form.getByLabel('Input (JSON)').fill('{"resume": true}');
  await form.getByText('More options').click();
  await form.getByLabel('Time limit per attempt (s)').fill('4');
  await form.getByRole('button', { name: 'Submit task' }).click();
  await page.getByRole('heading', { name: /^Task [0-9a-f]{8}$/, level: 1 }).waitFor();
  const taskId = /[0-9a-f-]{36}$/.exec(page.url())[0];
  const timeline = page.getByRole('list', { name: 'Events, oldest first' });
  await page.locator('[data-state="live"]').waitFor();
  await timeline.locator('li[data-type="started"]').waitFor();
  await page.locator('#task-status[data-status="running"]').waitFor();

  // The API, read outside the page (the browser is offline for part of this): the same session and workspace.
  const workspace = await page.evaluate(() => sessionStorage.getItem('agentry.workspace'));
  const events = async () => {
    const response = await context.request.get(`${base}/api/v1/tasks/${taskId}/events`, { headers: { Accept: 'application/json', 'Agentry-Workspace': workspace } });
    check(response.ok(), `GET events answered ${response.status()}`);
    return response.json();
  };
  const shownSeqs = () => timeline.locator('li').evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));

  step('go offline while the task runs');
  const before = await shownSeqs();
  check(!(await events()).final, 'the task is still running when the browser goes offline');
  await context.setOffline(true);
  await page.locator('[data-state="offline"]').waitFor();
  await shot('offline');
  // Offline until the task has moved on: events the page could not receive.
  const missed = await eventually(async () => {
    const log = await events();
    return log.items.length > before.length && log.items;
  }, 'the task made progress while the browser was offline', 30000);
  check((await shownSeqs()).length === before.length, 'nothing reached the offline page');

  step('back online: the stream resumes after the last event shown');
  await context.setOffline(false);
  await page.locator('#task-status[data-status="succeeded"]').waitFor({ timeout: 60000 });
  await page.locator('[data-state="ended"]').waitFor();
  const shown = await shownSeqs();
  const all = (await events()).items.map((e) => e.seq);
  check(JSON.stringify(shown) === JSON.stringify(all), `the timeline ${JSON.stringify(shown)} is the task's events ${JSON.stringify(all)}, each once`);
  await shot('resumed');
  return { taskId, shown, missedWhileOffline: missed.length - before.length, shownBeforeOffline: before.length };
});
