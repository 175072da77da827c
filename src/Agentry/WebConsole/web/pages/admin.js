// Admin: the current workspace's members and API keys (a new key's secret shown once), users and workspaces (platform
// administrators), and the audit log with filters. Tabs: #/admin (workspace), #/admin/users, #/admin/workspaces,
// #/admin/audit.
import { api, query, currentWorkspace } from '../api.js';
import { h, fill, notice, attempt, badge, time, table, values, field, more, json, ready } from '../ui.js';

const tabs = [['workspace', 'Members and API keys'], ['users', 'Users'], ['workspaces', 'Workspaces'], ['audit', 'Audit log']];
const scopes = ['agents:read', 'agents:write', 'tasks:read', 'tasks:write', 'chat', 'knowledge:read', 'knowledge:write', 'tools:call', 'admin'];

export default async function render(root, { params, query: search, me }) {
  const tab = tabs.some(([name]) => name === params[0]) ? params[0] : 'workspace';
  const body = h('div');
  fill(root,
    h('h1', 'Admin'),
    h('nav.row', { 'aria-label': 'Admin sections' }, tabs.map(([name, title]) =>
      h('a', { href: name === 'workspace' ? '#/admin' : `#/admin/${name}`, 'aria-current': name === tab ? 'page' : undefined }, title))),
    body);
  const views = { workspace, users, workspaces, audit };
  await views[tab](body, me, search);
  ready('admin');
}

async function workspace(root, me) {
  const id = currentWorkspace();
  const members = h('div');
  const keys = h('div');
  const created = h('div', { 'aria-live': 'polite' });
  fill(root,
    h('section.card', { 'aria-labelledby': 'members-title' }, h('h2#members-title', 'Members'), members, memberForm(id, me, () => loadMembers())),
    h('section.card', { 'aria-labelledby': 'keys-title' }, h('h2#keys-title', 'API keys'), created, keyForm(id, created, () => loadKeys()), keys));

  async function loadMembers() {
    await attempt(members, async () => {
      const page = await api(`/api/v1/workspaces/${id}/members?limit=100`);
      fill(members, memberTable(id, page.items, loadMembers));
    });
  }

  async function loadKeys() {
    await attempt(keys, async () => {
      const page = await api(`/api/v1/workspaces/${id}/api-keys?limit=100`);
      fill(keys, table([
        { title: 'Name', cell: (k) => k.name },
        { title: 'Key', cell: (k) => h('code', `${k.prefix}…`) },
        { title: 'Scopes', cell: (k) => k.scopes.join(' ') },
        { title: 'Created', cell: (k) => time(k.createdAt) },
        { title: 'Last used', cell: (k) => k.lastUsedAt ? time(k.lastUsedAt) : 'never' },
        { title: 'Expires', cell: (k) => k.expiresAt ? time(k.expiresAt) : 'never' },
        { title: 'Status', cell: (k) => k.revokedAt ? badge('revoked') : badge('active') },
        { title: '', cell: (k) => k.revokedAt ? '' : revokeButton(id, k, loadKeys) },
      ], page.items, 'No API keys.'));
    });
  }

  await Promise.allSettled([loadMembers(), loadKeys()]);
}

function memberTable(workspaceId, items, reload) {
  return table([
    { title: 'Name', cell: (m) => m.displayName },
    { title: 'Email', cell: (m) => m.email },
    { title: 'Role', cell: (m) => roleSelect(workspaceId, m, reload) },
    { title: 'Since', cell: (m) => time(m.createdAt) },
  ], items, 'No members.');
}

function roleSelect(workspaceId, member, reload) {
  const errors = h('div');
  const select = h('select', { 'aria-label': `Role of ${member.email}` }, ['owner', 'admin', 'member', 'viewer'].map((r) => h('option', { value: r, selected: r === member.role }, r)));
  select.addEventListener('change', async () => {
    const done = await attempt(errors, () => api(`/api/v1/workspaces/${workspaceId}/members/${member.userId}`, { method: 'PUT', body: { role: select.value } }));
    if (done !== undefined) await reload();
  });
  const remove = h('button.secondary', { type: 'button' }, `Remove ${member.email}`);
  remove.addEventListener('click', async () => {
    const done = await attempt(errors, () => api(`/api/v1/workspaces/${workspaceId}/members/${member.userId}`, { method: 'DELETE' }).then(() => true), remove);
    if (done) await reload();
  });
  return h('div', h('div.row', select, remove), errors);
}

function memberForm(workspaceId, me, reload) {
  const errors = h('div');
  const user = h('input', { name: 'user', required: true, placeholder: 'user id', list: 'known-users' });
  const options = h('datalist#known-users');
  if (me.isPlatformAdmin) {
    api('/api/v1/users?limit=100').then((page) => fill(options, page.items.map((u) => h('option', { value: u.id }, `${u.displayName} <${u.email}>`))), () => {});
  }
  const form = h('form.row', { 'aria-label': 'Add a member' },
    field('User', user), options,
    field('Role', h('select', { name: 'role' }, ['member', 'viewer', 'admin', 'owner'].map((r) => h('option', { value: r }, r)))),
    h('button', { type: 'submit' }, 'Add member'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const done = await attempt(errors, () => api(`/api/v1/workspaces/${workspaceId}/members/${encodeURIComponent(v.user.trim())}`, { method: 'PUT', body: { role: v.role } }), form.querySelector('button'));
    if (done !== undefined) {
      form.reset();
      await reload();
    }
  });
  return h('div', form, errors);
}

function keyForm(workspaceId, shown, reload) {
  const errors = h('div');
  const form = h('form.stack', { 'aria-label': 'Create an API key' },
    h('h3', 'Create a key'),
    field('Name', h('input', { name: 'name', required: true, maxlength: 100 })),
    h('fieldset', h('legend', 'Scopes'), scopes.map((s) => h('label.inline', h('input', { type: 'checkbox', name: 'scope', value: s }), s))),
    field('Expires (optional)', h('input', { name: 'expiresAt', type: 'date' })),
    field('Daily token budget (optional)', h('input', { name: 'dailyTokenBudget', type: 'number', min: 1 })),
    h('button', { type: 'submit' }, 'Create key'),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const body = {
      name: v.name,
      scopes: [...form.querySelectorAll('input[name=scope]:checked')].map((c) => c.value),
      expiresAt: v.expiresAt ? new Date(`${v.expiresAt}T00:00:00Z`).toISOString() : null,
      dailyTokenBudget: v.dailyTokenBudget ? Number(v.dailyTokenBudget) : null,
    };
    const key = await attempt(errors, () => api(`/api/v1/workspaces/${workspaceId}/api-keys`, { method: 'POST', body }), form.querySelector('button'));
    if (key) {
      form.reset();
      // The only time the secret exists outside its hash: shown here once, never stored by the console.
      fill(shown, h('div.notice', { role: 'status' },
        h('strong', `Key "${key.name}" created. Copy it now: it is shown only once.`),
        h('div.secret#new-api-key', key.key)));
      await reload();
    }
  });
  return form;
}

function revokeButton(workspaceId, key, reload) {
  const errors = h('div');
  const button = h('button.danger', { type: 'button' }, `Revoke ${key.name}`);
  button.addEventListener('click', async () => {
    const done = await attempt(errors, () => api(`/api/v1/workspaces/${workspaceId}/api-keys/${key.id}`, { method: 'DELETE' }).then(() => true), button);
    if (done) await reload();
  });
  return h('div', button, errors);
}

async function users(root, me) {
  if (!me.isPlatformAdmin) {
    fill(root, h('p.muted', 'Only platform administrators manage users.'));
    return;
  }
  const list = h('div');
  const errors = h('div');
  const form = h('form.stack.card', { 'aria-label': 'Create a user' },
    h('h2', 'Create a user'),
    field('Email', h('input', { name: 'email', type: 'email', required: true })),
    field('Display name', h('input', { name: 'displayName', required: true })),
    field('Password (12 characters or more)', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true })),
    h('label.inline', h('input', { type: 'checkbox', name: 'isPlatformAdmin' }), 'Platform administrator'),
    h('button', { type: 'submit' }, 'Create user'),
    errors);
  const load = async () => attempt(list, async () => {
    const page = await api('/api/v1/users?limit=50');
    fill(list, userTable(page.items, load), more((cursor) => api(`/api/v1/users${query({ limit: 50, cursor })}`), (items) => userTable(items, load), page.nextCursor));
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const user = await attempt(errors, () => api('/api/v1/users', { method: 'POST', body: { email: v.email, displayName: v.displayName, password: v.password, isPlatformAdmin: v.isPlatformAdmin === 'on' } }), form.querySelector('button'));
    if (user) {
      form.reset();
      errors.append(notice(`Created ${user.email} (id ${user.id}).`));
      await load();
    }
  });
  fill(root, h('section.card', h('h2', 'Users'), list), form);
  await load();
}

function userTable(items, reload) {
  return table([
    { title: 'Name', cell: (u) => u.displayName },
    { title: 'Email', cell: (u) => u.email },
    { title: 'Id', cell: (u) => h('code', u.id) },
    { title: 'Platform admin', cell: (u) => u.isPlatformAdmin ? 'yes' : 'no' },
    { title: 'Status', cell: (u) => badge(u.isDisabled ? 'disabled' : 'active') },
    { title: 'Created', cell: (u) => time(u.createdAt) },
    { title: '', cell: (u) => {
      const errors = h('div');
      const button = h('button.secondary', { type: 'button' }, u.isDisabled ? `Enable ${u.email}` : `Disable ${u.email}`);
      button.addEventListener('click', async () => {
        const done = await attempt(errors, () => api(`/api/v1/users/${u.id}`, { method: 'PATCH', body: { isDisabled: !u.isDisabled } }), button);
        if (done !== undefined) await reload();
      });
      return h('div', button, errors);
    } },
  ], items, 'No users.');
}

async function workspaces(root, me) {
  const list = h('div');
  const errors = h('div');
  const load = async () => attempt(list, async () => {
    const page = await api('/api/v1/workspaces?limit=100');
    fill(list, table([
      { title: 'Name', cell: (w) => w.name },
      { title: 'Slug', cell: (w) => h('code', w.slug) },
      { title: 'Daily token budget', cell: (w) => w.dailyTokenBudget ?? 'none' },
      { title: 'Created', cell: (w) => time(w.createdAt) },
    ], page.items, 'No workspaces.'));
  });
  const form = h('form.stack.card', { 'aria-label': 'Create a workspace' },
    h('h2', 'Create a workspace'),
    field('Name', h('input', { name: 'name', required: true })),
    field('Slug', h('input', { name: 'slug', required: true })),
    field('Description', h('input', { name: 'description' })),
    h('button', { type: 'submit' }, 'Create workspace'),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const created = await attempt(errors, () => api('/api/v1/workspaces', { method: 'POST', body: { name: v.name, slug: v.slug, description: v.description || null } }), form.querySelector('button'));
    if (created) {
      form.reset();
      errors.append(notice(`Created ${created.name}; reload the console to switch to it.`));
      await load();
    }
  });
  fill(root, h('section.card', h('h2', 'Workspaces'), list), me.isPlatformAdmin ? form : h('p.muted', 'Only platform administrators create workspaces.'));
  await load();
}

async function audit(root, me, search) {
  const list = h('div');
  const filters = {
    action: search.get('action') ?? '',
    outcome: search.get('outcome') ?? '',
    actorUserId: search.get('actorUserId') ?? '',
    from: search.get('from') ?? '',
    to: search.get('to') ?? '',
    // Workspace admins read their workspace's events; platform administrators everything unless they narrow it.
    workspaceId: search.get('workspaceId') ?? (me.isPlatformAdmin ? '' : currentWorkspace()),
  };
  const form = h('form.row.card', { 'aria-label': 'Filter the audit log' },
    field('Action (or a prefix ending in a dot)', h('input', { name: 'action', value: filters.action })),
    field('Outcome', h('select', { name: 'outcome' }, ['', 'success', 'failure', 'denied'].map((o) => h('option', { value: o, selected: o === filters.outcome }, o || 'any')))),
    field('Actor user id', h('input', { name: 'actorUserId', value: filters.actorUserId })),
    field('From', h('input', { name: 'from', type: 'datetime-local', value: filters.from })),
    field('To', h('input', { name: 'to', type: 'datetime-local', value: filters.to })),
    field('Workspace id', h('input', { name: 'workspaceId', value: filters.workspaceId })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/admin/audit${query(values(form))}`;
  });
  const params = {
    ...filters,
    from: filters.from ? new Date(filters.from).toISOString() : '',
    to: filters.to ? new Date(filters.to).toISOString() : '',
  };
  const rows = (items) => table([
    { title: 'When', cell: (e) => time(e.at) },
    { title: 'Action', cell: (e) => h('code', e.action) },
    { title: 'Outcome', cell: (e) => badge(e.outcome) },
    { title: 'Actor', cell: (e) => e.actorName ?? e.actorUserId ?? e.actorKeyId ?? '' },
    { title: 'Target', cell: (e) => e.target ?? '' },
    { title: 'Detail', cell: (e) => e.detail ? json(e.detail) : '' },
  ], items, 'No events match.');
  fill(root, form, h('section.card', { 'aria-labelledby': 'audit-title' }, h('h2#audit-title', 'Events'), list));
  await attempt(list, async () => {
    const page = await api(`/api/v1/audit${query({ ...params, limit: 50 })}`);
    fill(list, rows(page.items), more((cursor) => api(`/api/v1/audit${query({ ...params, limit: 50, cursor })}`), rows, page.nextCursor));
  });
}
