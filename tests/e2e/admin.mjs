// Admin: an API key created in the console is shown once and works with curl; revoked, curl is refused; both, and the
// sign-in, are in the audit log. A user created in the console can be added to the workspace.
import { execFileSync } from 'node:child_process';
import { scenario, base, check, open, eventually } from './lib.mjs';

function curl(key) {
  const status = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${key}`, `${base}/api/v1/agents`], { encoding: 'utf8' });
  return Number(status);
}

await scenario('admin', async ({ page, shot, step, env }) => {
  step('create an API key');
  await open(page, '#/admin', 'admin');
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill(env.E2E_KEY_NAME);
  await form.getByLabel('agents:read').check();
  await form.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.locator('#new-api-key').innerText()).trim();
  check(key.startsWith('agt_'), `the new key is shown: ${key.slice(0, 8)}…`);
  await shot('api-key-created');

  step('use it with curl');
  const allowed = curl(key);
  check(allowed === 200, `curl with the new key answered ${allowed}`);

  step('the secret is shown once');
  await open(page, '#/admin', 'admin');
  check((await page.locator('body').innerText()).indexOf(key) < 0, 'the key is not shown again');
  const row = page.getByRole('row').filter({ hasText: env.E2E_KEY_NAME });
  await row.getByText(/never|:/).first().waitFor();

  step('revoke it');
  await row.getByRole('button', { name: `Revoke ${env.E2E_KEY_NAME}` }).click();
  await page.getByRole('row').filter({ hasText: env.E2E_KEY_NAME }).getByText('revoked').waitFor();
  const refused = await eventually(async () => { const s = curl(key); return s === 401 ? s : false; }, 'curl is refused after the revocation');
  await shot('api-key-revoked');

  step('create a user and add them to the workspace');
  await open(page, '#/admin/users', 'admin');
  const user = page.getByRole('form', { name: 'Create a user' });
  await user.getByLabel('Email').fill(env.E2E_USER_EMAIL);
  await user.getByLabel('Display name').fill('Console Person');
  await user.getByLabel(/^Password/).fill('a-long-enough-password');
  await user.getByRole('button', { name: 'Create user' }).click();
  const createdText = await page.getByRole('status').filter({ hasText: env.E2E_USER_EMAIL }).innerText();
  const userId = /id ([0-9a-f-]{36})/.exec(createdText)[1];
  await shot('users');
  await open(page, '#/admin', 'admin');
  const add = page.getByRole('form', { name: 'Add a member' });
  await add.getByLabel('User').fill(userId);
  await add.getByLabel('Role').selectOption('viewer');
  await add.getByRole('button', { name: 'Add member' }).click();
  await page.getByRole('row').filter({ hasText: env.E2E_USER_EMAIL }).waitFor();
  await shot('members');

  step('the audit log');
  await open(page, '#/admin/audit?action=apikey.', 'admin');
  await page.getByRole('row').filter({ hasText: 'apikey.created' }).first().waitFor();
  await page.getByRole('row').filter({ hasText: 'apikey.revoked' }).first().waitFor();
  await shot('audit');
  await open(page, '#/admin/audit?action=signin.&outcome=success', 'admin');
  await page.getByRole('row').filter({ hasText: 'signin.succeeded' }).first().waitFor();
  await open(page, '#/admin/audit?action=member.', 'admin');
  await page.getByRole('row').filter({ hasText: 'member.added' }).first().waitFor();

  step('narrow screen');
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page, '#/admin', 'admin');
  await shot('narrow');
  return { allowed, refused, prefix: key.slice(0, 12), userId };
});
