// Agents: the workspace's agents a page at a time, a create form showing only the chosen kind's fields, import of an
// exported document; an agent's page edits it (a real change makes a new version), lists its versions, exports,
// deletes and submits a task to it. #/agents, #/agents/{id}, #/agents/{id}/versions/{n}.
import { api, send, query } from '../api.js';
import { h, fill, problem, attempt, notice, badge, time, json, ready, moreButton } from '../ui.js';
import { taskForm } from './tasks.js';

const kinds = ['llm', 'webhook', 'tool'];
const PAGE = 20;

// A message for the next page shown (after a create, an import or a delete moves to another page): the secrets a
// write response reveals once must survive the move.
let flash = null;

export default async function render(root, { params, query: search }) {
  if (params[0] && params[1] === 'versions' && params[2]) return version(root, params[0], params[2]);
  if (params[0]) return detail(root, params[0]);
  return list(root, search);
}

// ---- the list, the create form and the import form

async function list(root, search) {
  const kind = kinds.includes(search.get('kind')) ? search.get('kind') : '';
  const rows = h('tbody');
  const more = h('div');
  const listed = h('div', h('p.muted', 'Loading…'));
  const filter = h('select', { name: 'kind', 'aria-label': 'Kind' }, h('option', { value: '' }, 'All kinds'), kinds.map((k) => h('option', { value: k }, k)));
  filter.value = kind;
  filter.addEventListener('change', () => { location.hash = `#/agents${query({ kind: filter.value })}`; });
  fill(root,
    h('h1', 'Agents'),
    takeFlash(),
    h('section.card', { 'aria-labelledby': 'agents-title' },
      h('div.row', h('h2#agents-title', 'All agents'), h('label.inline', 'Show', filter)),
      listed),
    h('section.card', { 'aria-labelledby': 'create-title' }, h('h2#create-title', 'Create an agent'), createForm()),
    h('section.card', { 'aria-labelledby': 'import-title' }, h('h2#import-title', 'Import an agent'), importForm()));

  const columns = ['Name', 'Kind', 'Version', 'Updated'];
  const row = (a) => h('tr',
    h('td', h('a', { href: `#/agents/${a.id}` }, a.name)),
    h('td', badge(a.kind)),
    h('td', String(a.version)),
    h('td', time(a.updatedAt)));
  const load = async (cursor) => {
    const page = await api(`/api/v1/agents${query({ kind, limit: PAGE, cursor })}`);
    rows.append(...page.items.map(row));
    fill(more, page.nextCursor ? moreButton(() => load(page.nextCursor)) : null);
    return page;
  };
  try {
    const first = await load();
    fill(listed, first.items.length
      ? [h('div.scroll', h('table', h('thead', h('tr', columns.map((c) => h('th', { scope: 'col' }, c)))), rows)), more]
      : h('p.muted', kind ? `No ${kind} agents.` : 'No agents yet: create one below.'));
  } catch (error) {
    fill(listed, problem(error));
  }
  ready('agents');
}

function takeFlash() {
  const shown = flash;
  flash = null;
  return shown;
}

/** What a write response reveals once: the hooks' signing secrets the change set. */
function secrets(agent) {
  const shown = [['Webhook', agent.webhook], ['Completion notice', agent.onComplete]].filter(([, hook]) => hook?.secret);
  return shown.map(([label, hook]) => h('div.notice', { role: 'status' },
    h('strong', `${label} signing secret — shown this once, keep it now:`), h('div.secret', hook.secret)));
}

const text = (name, label, value, extra = {}) => h('label', label, h('input', { name, value: value ?? '', ...extra }));
const number = (name, label, value, min, max) => text(name, label, value, { type: 'number', min, max, inputmode: 'numeric' });
const listText = (values) => (values ?? []).join(', ');
const splitList = (value) => value.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);

/**
 * The fields of an agent's definition, grouped by the kinds they belong to; the groups of other kinds are hidden
 * (and left out of the request). `current` pre-fills them (an edit).
 */
function definitionFields(current = {}) {
  const limits = current.limits ?? {};
  const groups = {
    llm: h('fieldset', { dataset: { kinds: 'llm' } }, h('legend', 'Model'),
      text('model', 'Model (provider/model)', current.model, { placeholder: 'local/tiny' }),
      h('label', 'System prompt', h('textarea', { name: 'systemPrompt', rows: 4, value: current.systemPrompt ?? '' })),
      text('allowedTools', 'Allowed tools (comma-separated {server}__{tool})', listText(current.allowedTools)),
      text('knowledgeCollections', 'Knowledge collections (comma-separated)', listText(current.knowledgeCollections)),
      h('div.row', number('maxSteps', 'Max steps', limits.maxSteps, 1, 100), number('maxTokens', 'Max tokens', limits.maxTokens, 1, 1000000))),
    webhook: h('fieldset', { dataset: { kinds: 'webhook' } }, h('legend', 'Webhook'),
      text('webhookUrl', 'Webhook URL', current.webhook?.url, { inputmode: 'url', autocomplete: 'off' }),
      text('webhookSecret', current.webhook ? 'New signing secret (blank keeps the current one)' : 'Signing secret (blank generates one)', '',
        { autocomplete: 'off', spellcheck: 'false' })),
    tool: h('fieldset', { dataset: { kinds: 'tool' } }, h('legend', 'Tool'),
      text('tool', 'Tool ({server}__{tool})', current.tool)),
    held: h('fieldset', { dataset: { kinds: 'llm tool' } }, h('legend', 'Approvals'),
      text('approvalTools', 'Tools whose calls wait for approval (comma-separated)', listText(current.approvalTools))),
  };
  const common = h('fieldset', h('legend', 'Every kind'),
    h('label', 'Description', h('textarea', { name: 'description', rows: 2, value: current.description ?? '' })),
    number('timeoutSeconds', 'Time limit per run (seconds)', limits.timeoutSeconds, 1, 3600),
    text('onCompleteUrl', 'Completion notice URL (optional)', current.onComplete?.url, { inputmode: 'url', autocomplete: 'off' }));
  const show = (kind) => {
    for (const group of Object.values(groups)) {
      const on = group.dataset.kinds.split(' ').includes(kind);
      group.hidden = !on;
      group.disabled = !on;
    }
  };
  return { nodes: [...Object.values(groups), common], show };
}

/** The request body for the form's kind: only the fields that kind takes, only those filled in. */
function definitionBody(form, kind) {
  const v = (name) => {
    const input = form.elements.namedItem(name);
    return input && !input.disabled ? input.value.trim() : '';
  };
  const int = (name) => (v(name) === '' ? undefined : Number(v(name)));
  const body = {
    description: v('description') || undefined,
    limits: { timeoutSeconds: int('timeoutSeconds'), maxSteps: kind === 'llm' ? int('maxSteps') : undefined, maxTokens: kind === 'llm' ? int('maxTokens') : undefined },
    onComplete: v('onCompleteUrl') ? { url: v('onCompleteUrl') } : undefined,
  };
  if (kind === 'llm') {
    Object.assign(body, {
      model: v('model') || undefined,
      systemPrompt: v('systemPrompt') || undefined,
      allowedTools: splitList(v('allowedTools')),
      knowledgeCollections: splitList(v('knowledgeCollections')),
    });
  }
  if (kind === 'webhook' && v('webhookUrl')) body.webhook = { url: v('webhookUrl'), secret: v('webhookSecret') || undefined };
  if (kind === 'tool') body.tool = v('tool') || undefined;
  if (kind === 'llm' || kind === 'tool') body.approvalTools = splitList(v('approvalTools'));
  return body;
}

function kindPicker(value, onChange) {
  const select = h('select', { name: 'kind' }, kinds.map((k) => h('option', { value: k }, k)));
  select.value = value;
  select.addEventListener('change', () => onChange(select.value));
  return select;
}

function createForm() {
  const errors = h('div');
  const fields = definitionFields();
  const kind = kindPicker('llm', fields.show);
  // novalidate: the server is the one judge of a definition, and its field errors are shown as it wrote them.
  const form = h('form.stack', { novalidate: true, 'aria-describedby': 'create-hint' },
    h('p.muted#create-hint', 'An agent is a model with a prompt and tools (llm), a URL that is called with each task (webhook), or one MCP tool (tool).'),
    text('name', 'Name', ''),
    h('label', 'Kind', kind),
    fields.nodes,
    h('div', h('button', { type: 'submit' }, 'Create agent')),
    errors);
  fields.show(kind.value);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { name: form.elements.namedItem('name').value.trim(), kind: kind.value, ...definitionBody(form, kind.value) };
    const created = await attempt(errors, () => api('/api/v1/agents', { method: 'POST', body }), form.querySelector('button[type=submit]'));
    if (created) {
      flash = h('div', notice(`Created ${created.name} (version ${created.version}).`), secrets(created));
      location.hash = `#/agents/${created.id}`;
    }
  });
  return form;
}

function importForm() {
  const errors = h('div');
  const documentText = h('textarea', { name: 'document', rows: 8, spellcheck: 'false', placeholder: '{ "agentry": "agent/v1", "name": "…", "kind": "…" }' });
  const file = h('input', { type: 'file', name: 'file', accept: 'application/json,.json' });
  file.addEventListener('change', async () => {
    if (file.files[0]) documentText.value = await file.files[0].text();
  });
  const form = h('form.stack', { novalidate: true },
    h('p.muted', 'Paste a document exported from an agent (here or on another installation), or choose its file.'),
    h('label', 'Exported document (JSON)', documentText),
    h('label', 'Or a file', file),
    text('rename', 'New name (optional; the document\'s name otherwise)', ''),
    h('div', h('button', { type: 'submit' }, 'Import agent')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // Sent as written: whether it is a valid document is the server's to say.
    const imported = await attempt(errors, () => api(`/api/v1/agents/import${query({ name: form.elements.namedItem('rename').value.trim() })}`, {
      method: 'POST', body: documentText.value, headers: { 'Content-Type': 'application/json' },
    }), form.querySelector('button[type=submit]'));
    if (imported) {
      flash = h('div', notice(`Imported as ${imported.name} (version ${imported.version}).`), secrets(imported));
      location.hash = `#/agents/${imported.id}`;
    }
  });
  return form;
}

// ---- one agent

async function detail(root, id) {
  const summary = h('div', h('p.muted', 'Loading…'));
  const versions = h('div', h('p.muted', 'Loading…'));
  const edit = h('div');
  const saved = h('div');
  const actions = h('div');
  const heading = h('h1', 'Agent');
  fill(root,
    h('p', h('a', { href: '#/agents' }, '← All agents')),
    heading,
    takeFlash(),
    summary,
    h('section.card', { 'aria-labelledby': 'submit-title' }, h('h2#submit-title', 'Submit a task'), taskForm({ agentId: id })),
    h('section.card', { 'aria-labelledby': 'edit-title' }, h('h2#edit-title', 'Edit'), saved, edit),
    h('section.card', { 'aria-labelledby': 'versions-title' }, h('h2#versions-title', 'Versions'), versions),
    h('section.card', { 'aria-labelledby': 'actions-title' }, h('h2#actions-title', 'Export and delete'), actions));

  const show = (agent) => {
    fill(heading, agent.name);
    document.title = `${agent.name} · Agents · Agentry`;
    fill(summary, facts(agent));
    fill(edit, editForm(agent, async (changed, said) => {
      show(changed);
      fill(saved, notice(said), secrets(changed));
      await loadVersions();
    }));
    fill(actions, agentActions(agent));
  };
  const loadVersions = () => api(`/api/v1/agents/${id}/versions${query({ limit: PAGE })}`)
    .then((page) => fill(versions, versionTable(id, page)), (error) => fill(versions, problem(error)));
  const [agent] = await Promise.allSettled([api(`/api/v1/agents/${id}`), loadVersions()]);
  if (agent.status === 'fulfilled') show(agent.value);
  else {
    fill(summary, problem(agent.reason));
    fill(edit, h('p.muted', 'Nothing to edit.'));
  }
  ready('agents');
}

function facts(agent) {
  const rows = [
    ['Kind', badge(agent.kind)],
    ['Version', String(agent.version)],
    ['Id', h('code', agent.id)],
    ['Description', agent.description],
    ['Model', agent.model],
    ['System prompt', agent.systemPrompt && h('pre', agent.systemPrompt)],
    ['Webhook', agent.webhook && [agent.webhook.url, agent.webhook.secretSet ? ' (signed)' : '']],
    ['Tool', agent.tool],
    ['Allowed tools', listText(agent.allowedTools)],
    ['Knowledge collections', listText(agent.knowledgeCollections)],
    ['Held for approval', listText(agent.approvalTools)],
    ['Limits', `${agent.limits.timeoutSeconds} s per run` + (agent.kind === 'llm' ? `, ${agent.limits.maxSteps} steps, ${agent.limits.maxTokens} tokens` : '')],
    ['Completion notice', agent.onComplete?.url],
    ['Created', time(agent.createdAt)],
    ['Updated', time(agent.updatedAt)],
  ].filter(([, value]) => value !== undefined && value !== null && value !== '');
  return h('section.card', { 'aria-label': 'Agent' }, h('dl.facts', rows.map(([term, value]) => [h('dt', term), h('dd', value)])));
}

/** The edit form: sends only what differs from the agent as it is, so saving nothing makes no new version. */
function editForm(agent, onSaved) {
  const errors = h('div');
  const fields = definitionFields(agent);
  const kind = kindPicker(agent.kind, fields.show);
  const form = h('form.stack', { novalidate: true },
    text('name', 'Name', agent.name),
    h('label', 'Kind', kind),
    fields.nodes,
    h('div', h('button', { type: 'submit' }, 'Save changes')),
    errors);
  fields.show(agent.kind);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const wanted = { name: form.elements.namedItem('name').value.trim(), kind: kind.value, ...definitionBody(form, kind.value) };
    const now = { name: agent.name, kind: agent.kind, description: agent.description, model: agent.model, systemPrompt: agent.systemPrompt,
      allowedTools: agent.allowedTools, knowledgeCollections: agent.knowledgeCollections, tool: agent.tool, approvalTools: agent.approvalTools };
    const body = {};
    for (const [key, value] of Object.entries(wanted)) {
      if (key === 'limits') {
        const changed = Object.entries(value).filter(([k, n]) => n !== undefined && n !== agent.limits[k]);
        if (changed.length) body.limits = Object.fromEntries(changed);
      } else if (key === 'webhook' || key === 'onComplete') {
        if (value && (value.secret || value.url !== agent[key]?.url)) body[key] = value;
      } else if (Array.isArray(value)) {
        if (value.join('\n') !== (now[key] ?? []).join('\n')) body[key] = value;
      } else if ((value ?? '') !== (now[key] ?? '')) {
        // A field emptied is sent empty (cleared); one never set and still empty is left out.
        body[key] = value ?? '';
      }
    }
    const saved = await attempt(errors, () => api(`/api/v1/agents/${agent.id}`, { method: 'PATCH', body }), form.querySelector('button[type=submit]'));
    if (saved) {
      await onSaved(saved, saved.version > agent.version ? `Saved as version ${saved.version}.` : `Nothing changed: still version ${saved.version}.`);
    }
  });
  return form;
}

function versionTable(id, page) {
  const rows = h('tbody');
  const more = h('div');
  const add = (p) => {
    rows.append(...p.items.map((v) => h('tr',
      h('td', h('a', { href: `#/agents/${id}/versions/${v.version}` }, `Version ${v.version}`)),
      h('td', v.name), h('td', badge(v.kind)), h('td', time(v.createdAt)))));
    fill(more, p.nextCursor ? moreButton(async () => add(await api(`/api/v1/agents/${id}/versions${query({ limit: PAGE, cursor: p.nextCursor })}`))) : null);
  };
  add(page);
  return h('div',
    h('div.scroll', h('table', { 'aria-label': 'Versions, newest first' },
      h('thead', h('tr', ['Version', 'Name', 'Kind', 'Created'].map((c) => h('th', { scope: 'col' }, c)))), rows)),
    more);
}

function agentActions(agent) {
  const errors = h('div');
  const exportButton = h('button.secondary', { type: 'button' }, 'Export as JSON');
  exportButton.addEventListener('click', () => attempt(errors, async () => {
    const response = await send(`/api/v1/agents/${agent.id}/export`);
    const url = URL.createObjectURL(new Blob([await response.text()], { type: 'application/json' }));
    const link = h('a', { href: url, download: `${agent.name.replace(/[^\w.-]+/g, '-')}.agent.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }, exportButton));

  const confirm = h('div.row', { hidden: true },
    h('span', `Delete ${agent.name}? Its tasks and versions are kept.`));
  const yes = h('button.danger', { type: 'button' }, 'Yes, delete it');
  const no = h('button.secondary', { type: 'button' }, 'Keep it');
  confirm.append(yes, no);
  const deleteButton = h('button.danger', { type: 'button' }, 'Delete agent');
  deleteButton.addEventListener('click', () => { confirm.hidden = false; deleteButton.hidden = true; yes.focus(); });
  no.addEventListener('click', () => { confirm.hidden = true; deleteButton.hidden = false; deleteButton.focus(); });
  yes.addEventListener('click', async () => {
    const done = await attempt(errors, () => api(`/api/v1/agents/${agent.id}`, { method: 'DELETE' }).then(() => true), yes);
    if (done) {
      flash = notice(`Deleted ${agent.name}.`);
      location.hash = '#/agents';
    }
  });
  return h('div', h('p.muted', 'An export is a self-contained document (no ids, no secrets) that the import form takes, here or elsewhere.'),
    h('div.row', exportButton, deleteButton), confirm, errors);
}

// ---- one version

async function version(root, id, number) {
  const body = h('div', h('p.muted', 'Loading…'));
  fill(root, h('p', h('a', { href: `#/agents/${id}` }, '← The agent')), h('h1', `Version ${number}`), body);
  try {
    const v = await api(`/api/v1/agents/${id}/versions/${encodeURIComponent(number)}`);
    fill(body, h('section.card', { 'aria-label': `Version ${v.version}` },
      h('dl.facts',
        h('dt', 'Name'), h('dd', v.name),
        h('dt', 'Kind'), h('dd', badge(v.kind)),
        h('dt', 'Created'), h('dd', time(v.createdAt)),
        h('dt', 'By'), h('dd', v.createdBy ? h('code', v.createdBy) : '—')),
      h('h2', 'Definition'), json(v.definition)));
  } catch (error) {
    fill(body, problem(error));
  }
  ready('agents');
}
