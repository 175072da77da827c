// Tools: the registered server runs and lists its tools; a tool is called through the form generated from its input
// schema; the held call of a tool agent's task waits in the approvals queue and is approved with a reason; the
// decision and the sign-in are in the audit log.
import { scenario, check, open, eventually } from './lib.mjs';

await scenario('tools', async ({ page, shot, step, env }) => {
  step('servers and catalog');
  await open(page, '#/tools');
  await page.getByRole('row').filter({ hasText: env.E2E_SERVER }).getByText('running').first().waitFor();
  await page.getByRole('button', { name: 'Try get-sum' }).waitFor();
  await shot('tools');

  step('call get-sum through the generated form');
  await page.getByRole('button', { name: 'Try get-sum' }).click();
  const form = page.getByRole('form', { name: `Call ${env.E2E_SERVER}__get-sum` });
  await form.getByLabel(/^a/).fill('2');
  await form.getByLabel(/^b/).fill('3');
  await form.getByRole('button', { name: 'Call' }).click();
  const sum = await form.getByRole('status').innerText();
  check(/\b5\b/.test(sum), `get-sum answered: ${sum}`);
  await shot('tool-result');

  step('a call the server refuses shows its problem as written');
  await page.getByRole('button', { name: 'Try echo' }).click();
  const echo = page.getByRole('form', { name: `Call ${env.E2E_SERVER}__echo` });
  // The browser would refuse an empty required field; remove the marker so the API judges the arguments itself.
  await echo.locator('input[name="message"]').evaluate((input) => input.removeAttribute('required'));
  await echo.getByRole('button', { name: 'Call' }).click();
  const refusal = await echo.getByRole('alert').innerText();
  check(/message/i.test(refusal), `the schema error names the argument: ${refusal}`);

  step('approve the held call');
  const row = page.getByRole('row').filter({ hasText: env.E2E_TASK.slice(0, 8) });
  await row.waitFor();
  await shot('approval-pending');
  await row.getByRole('textbox').fill('checked by the console test');
  await row.getByRole('button', { name: 'Approve' }).click();
  await eventually(async () => (await page.getByRole('row').filter({ hasText: env.E2E_TASK.slice(0, 8) }).count()) === 0, 'the approval leaves the pending queue');
  await open(page, '#/tools?approvals=approved', 'tools');
  await page.getByRole('row').filter({ hasText: env.E2E_TASK.slice(0, 8) }).getByText('checked by the console test').waitFor();
  await shot('approval-decided');

  step('the decision in the audit log');
  await open(page, '#/admin/audit?action=approval.', 'admin');
  await page.getByRole('cell', { name: 'approval.approved' }).first().waitFor();
  await shot('audit-approvals');
  return {};
});
