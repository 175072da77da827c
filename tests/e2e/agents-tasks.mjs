// Agents and tasks: the agents list paged; a webhook agent created from the console (after the server refused a bad URL, its field error shown
// as written), edited to version 2, exported, imported under a new name and the copy deleted; a task submitted from the
// agent's page and watched on its page until it succeeds, its timeline filling in live; the task list filtered; a keyed
// submission made twice submits once; the list following a task another client cancels; a waiting task cancelled from
// its page; a dead task requeued, dead again, and discarded.
// Env: AGENTRY_PAGER_NAMES (21 tool agents, more than a page), AGENTRY_AGENT_NAME, AGENTRY_HOOK_URL (first call hangs until the attempt's 3 s limit, then answers {"answer":42}),
// AGENTRY_DEAD_TASK (a dead task).
import { readFileSync } from 'node:fs';
import { scenario, base, check, open } from './lib.mjs';

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

await scenario('agents-tasks', async ({ page, context, shot, step, env }) => {
  const name = env.AGENTRY_AGENT_NAME;
  const ready = (section) => page.locator(`body[data-ready="${section}"]`).waitFor();
  const idFromUrl = () => uuid.exec(page.url())?.[0];

  step('the agents list, a page at a time');
  await open(page, '#/agents?kind=tool');
  const listed = page.getByRole('region', { name: 'All agents' }).getByRole('row');
  check(await listed.count() === 21, `the first page holds 20 agents: ${await listed.count() - 1}`);
  await page.getByRole('button', { name: 'More' }).click();
  const pagers = env.AGENTRY_PAGER_NAMES.split(',');
  await page.getByRole('link', { name: pagers[0], exact: true }).waitFor();
  for (const pager of pagers) check(await page.getByRole('link', { name: pager, exact: true }).count() === 1, `${pager} is listed once`);
  await open(page, '#/agents');
  const create = page.getByRole('region', { name: 'Create an agent' });
  await create.getByRole('button', { name: 'Create agent' }).waitFor();

  step('the server refuses a webhook URL, and its field error is shown as written');
  await create.getByLabel('Name', { exact: true }).fill(name);
  await create.getByLabel('Kind').selectOption('webhook');
  check(!(await create.getByLabel('Model (provider/model)').isVisible()), 'an llm field is hidden for a webhook agent');
  check(!(await create.getByLabel('Tool ({server}__{tool})').isVisible()), 'a tool field is hidden for a webhook agent');
  await create.getByLabel('Webhook URL').fill('not-a-url');
  await create.getByRole('button', { name: 'Create agent' }).click();
  const refusal = create.getByRole('alert');
  await refusal.filter({ hasText: 'The url must be an absolute http or https URL.' }).waitFor();
  check((await refusal.innerText()).includes('webhook.url'), `the error names the field: ${await refusal.innerText()}`);
  await shot('agent-create-refused');

  step('create the webhook agent');
  await create.getByLabel('Webhook URL').fill(env.AGENTRY_HOOK_URL);
  await create.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('heading', { name, level: 1 }).waitFor();
  await ready('agents');
  const agentId = idFromUrl();
  check(agentId, `the agent's page is #/agents/{id}: ${page.url()}`);
  await page.getByText('Webhook signing secret — shown this once').waitFor();
  check(/whsec_\w+/.test(await page.locator('.secret').innerText()), 'the generated secret is shown once');

  step('edit it: version 2');
  const edit = page.getByRole('region', { name: 'Edit' });
  await edit.getByLabel('Description').fill('Calls the test receiver.');
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await edit.getByText('Saved as version 2.').waitFor();
  const versions = page.getByRole('region', { name: 'Versions' });
  await versions.getByRole('link', { name: 'Version 2' }).waitFor();
  check(await versions.getByRole('link', { name: 'Version 1' }).isVisible(), 'version 1 is listed too');
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await edit.getByText('Nothing changed: still version 2.').waitFor();
  check(await versions.getByRole('link', { name: /^Version \d+$/ }).count() === 2, 'saving without a change made no version');
  await shot('agent-detail');

  step('version 1, as it was');
  await versions.getByRole('link', { name: 'Version 1' }).click();
  await page.getByRole('heading', { name: 'Version 1', level: 1 }).waitFor();
  await ready('agents');
  const definition = await page.getByRole('region', { name: 'Version 1' }).locator('pre').innerText();
  check(definition.includes(env.AGENTRY_HOOK_URL) && !definition.includes('Calls the test receiver.'), `version 1 is the agent before the edit: ${definition}`);
  await shot('agent-version');
  await page.getByRole('link', { name: '← The agent' }).click();
  await page.getByRole('heading', { name, level: 1 }).waitFor();

  step('export');
  await page.getByRole('button', { name: 'Export as JSON' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export as JSON' }).click()]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  check(exported.agentry === 'agent/v1' && exported.name === name && exported.kind === 'webhook' && exported.description === 'Calls the test receiver.',
    `the download is the agent's export: ${JSON.stringify(exported)}`);
  check(!JSON.stringify(exported).includes('whsec_'), 'an export carries no secret');

  step('import it: first under a taken name (the server says so), then renamed');
  await open(page, '#/agents');
  const importer = page.getByRole('region', { name: 'Import an agent' });
  await importer.getByLabel('Exported document (JSON)').fill(JSON.stringify(exported, null, 2));
  await importer.getByRole('button', { name: 'Import agent' }).click();
  await importer.getByRole('alert').filter({ hasText: `An agent named '${name}' already exists in this workspace.` }).waitFor();
  await importer.getByLabel('New name').fill(`${name}-copy`);
  await importer.getByRole('button', { name: 'Import agent' }).click();
  await page.getByRole('heading', { name: `${name}-copy`, level: 1 }).waitFor();
  const importedId = idFromUrl();
  check(importedId && importedId !== agentId, `the import is a new agent: ${page.url()}`);

  step('delete the copy');
  await page.getByRole('button', { name: 'Delete agent' }).click();
  await page.getByRole('button', { name: 'Yes, delete it' }).click();
  await page.getByText(`Deleted ${name}-copy.`).waitFor();
  await ready('agents');
  await page.getByRole('link', { name, exact: true }).waitFor();
  check(await page.getByRole('link', { name: `${name}-copy` }).count() === 0, 'the deleted copy is not listed');
  await shot('agents-list');

  step('submit a task from the agent page');
  await page.getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { name, level: 1 }).waitFor();
  const submit = page.getByRole('region', { name: 'Submit a task' });
  await submit.getByLabel('Input (JSON)').fill('{"hello": ');
  await submit.getByRole('button', { name: 'Submit task' }).click();
  await submit.getByRole('alert').filter({ hasText: 'The input is not valid JSON.' }).waitFor();
  await submit.getByLabel('Input (JSON)').fill('{"hello": "console"}');
  await submit.getByText('More options').click();
  await submit.getByLabel('Time limit per attempt (s)').fill('3');
  // Set on this document: if the task page were a reload, it would be gone.
  await page.evaluate(() => { window.agentryNotReloaded = true; });
  await submit.getByRole('button', { name: 'Submit task' }).click();
  await page.getByRole('heading', { name: /^Task [0-9a-f]{8}$/, level: 1 }).waitFor();
  const taskId = idFromUrl();
  check(taskId, `the task's page is #/tasks/{id}: ${page.url()}`);

  step('watch it run, time out, retry and succeed, live');
  const timeline = page.getByRole('list', { name: 'Events, oldest first' });
  await page.locator('#task-status[data-status="running"]').waitFor();
  await timeline.locator('li[data-type="started"]').waitFor();
  check(await timeline.locator('li[data-type="succeeded"]').count() === 0, 'the page shows the task running before it ends');
  await shot('task-detail-running');
  await timeline.locator('li[data-type="retrying"]').waitFor({ timeout: 30000 });
  await page.locator('#task-status[data-status="succeeded"]').waitFor({ timeout: 30000 });
  await page.getByText('The task has ended: no more events.').waitFor();
  check(await page.evaluate(() => window.agentryNotReloaded === true), 'the task page followed the task without a reload');
  const shown = await timeline.locator('li').evaluateAll((items) => items.map((li) => ({ seq: Number(li.dataset.seq), type: li.dataset.type })));
  check(JSON.stringify(shown.map((e) => e.type)) === JSON.stringify(['queued', 'started', 'failed', 'retrying', 'started', 'succeeded']),
    `the timeline: ${JSON.stringify(shown)}`);
  await page.getByRole('region', { name: 'Result' }).getByText('"answer": 42').waitFor();
  await shot('task-detail');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('task-detail-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });

  step('the task list, filtered');
  await open(page, '#/tasks');
  await page.getByRole('link', { name: `Task ${taskId}` }).waitFor();
  const filters = page.getByRole('form', { name: 'Filter tasks' });
  await filters.getByLabel('Status').selectOption('succeeded');
  await filters.getByLabel('Agent').selectOption({ label: name });
  await filters.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/status=succeeded/);
  await ready('tasks');
  await page.getByRole('link', { name: `Task ${taskId}` }).waitFor();
  check(page.url().includes(`agentId=${agentId}`), `the filter is in the address: ${page.url()}`);
  await shot('task-list');

  step('a keyed submission made twice submits once');
  const keyed = async () => {
    await open(page, '#/tasks');
    const form = page.getByRole('region', { name: 'Submit a task' });
    await form.getByLabel('Agent').selectOption({ label: `${name} (webhook)` });
    await form.getByLabel('Input (JSON)').fill('{"n": 2}');
    await form.getByLabel('Idempotency-Key').fill(`key-${agentId}`);
    await form.getByRole('button', { name: 'Submit task' }).click();
    await page.getByRole('heading', { name: /^Task [0-9a-f]{8}$/, level: 1 }).waitFor();
    await ready('tasks');
    return idFromUrl();
  };
  const keyedTaskId = await keyed();
  check(await keyed() === keyedTaskId, 'the same key opened the same task');
  await page.getByText(`The Idempotency-Key "key-${agentId}" was used before`).waitFor();

  const submitForLater = async () => {
    await open(page, '#/tasks');
    const later = page.getByRole('region', { name: 'Submit a task' });
    await later.getByLabel('Agent').selectOption({ label: `${name} (webhook)` });
    await later.getByText('More options').click();
    const inAnHour = await page.evaluate(() => {
      const at = new Date(Date.now() + 3600000);
      return new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    });
    await later.getByLabel('Not before').fill(inAnHour);
    await later.getByRole('button', { name: 'Submit task' }).click();
    await page.getByRole('heading', { name: /^Task [0-9a-f]{8}$/, level: 1 }).waitFor();
    await ready('tasks');
    await page.locator('#task-status[data-status="queued"]').waitFor();
    return idFromUrl();
  };

  step('the list follows a task another client cancels');
  const elsewhereTaskId = await submitForLater();
  await open(page, `#/tasks?agentId=${agentId}`);
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: `Task ${elsewhereTaskId}` }) });
  await row.getByText('queued', { exact: true }).waitFor();
  await page.evaluate(() => { window.agentryListNotReloaded = true; });
  const csrf = (await context.cookies()).find((c) => c.name === 'agentry_csrf').value;
  const workspace = await page.evaluate(() => sessionStorage.getItem('agentry.workspace'));
  const cancelled = await context.request.post(`${base}/api/v1/tasks/${elsewhereTaskId}/cancel`, { headers: { 'X-Agentry-Csrf': csrf, 'Agentry-Workspace': workspace } });
  check(cancelled.status() === 202, `the other client's cancel answered ${cancelled.status()}`);
  await row.getByText('cancelled', { exact: true }).waitFor({ timeout: 10000 });
  check(await page.evaluate(() => window.agentryListNotReloaded === true), 'the list updated without a reload');

  step('cancel a task that waits to run');
  const cancelledTaskId = await submitForLater();
  await page.getByRole('button', { name: 'Cancel task' }).click();
  await page.getByText('Cancel task: the server answered with the task cancelled.').waitFor();
  await timeline.locator('li[data-type="cancelled"]').waitFor();
  await page.locator('#task-status[data-status="cancelled"]').waitFor();
  check(await page.getByRole('button', { name: 'Cancel task' }).count() === 0, 'a cancelled task offers no cancel');

  step('a dead task: requeued, dead again, discarded');
  await open(page, '#/tasks?status=dead');
  await page.getByRole('heading', { name: 'Dead letters', level: 1 }).waitFor();
  await page.getByRole('link', { name: `Task ${env.AGENTRY_DEAD_TASK}` }).click();
  await page.locator('#task-status[data-status="dead"]').waitFor();
  await page.getByText('The task has ended: no more events.').waitFor();
  await shot('task-dead');
  await page.getByRole('button', { name: 'Requeue' }).click();
  await page.getByText('Requeue: the server answered with the task queued.').waitFor();
  await timeline.locator('li[data-type="requeued"]').waitFor();
  await timeline.locator('li[data-type="dead"]').nth(1).waitFor({ timeout: 30000 });
  await page.locator('#task-status[data-status="dead"]').waitFor();
  await page.getByRole('button', { name: 'Discard' }).click();
  await page.getByText('Discard: the server answered with the task cancelled.').waitFor();
  await timeline.locator('li[data-type="cancelled"]').waitFor();
  await page.getByText('The task has ended: no more events.').waitFor();
  const deadTimeline = await timeline.locator('li').evaluateAll((items) => items.map((li) => ({ seq: Number(li.dataset.seq), type: li.dataset.type })));
  await shot('task-discarded');

  step('the agent\'s changes in the audit log');
  await open(page, '#/admin/audit?action=agent.', 'admin');
  for (const action of ['agent.created', 'agent.updated', 'agent.imported', 'agent.deleted']) {
    await page.getByRole('row').filter({ hasText: action }).filter({ hasText: action === 'agent.created' || action === 'agent.updated' ? agentId : importedId }).first().waitFor();
  }
  await shot('audit-agents');

  return { agentId, importedId, taskId, shown, keyedTaskId, elsewhereTaskId, cancelledTaskId, deadTimeline };
});
