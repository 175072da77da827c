// Tools: the workspace's MCP servers with their live status and last error, the tool catalog with a form generated
// from each tool's input schema to call it, and the queue of tool calls held for approval.
import { api, query } from '../api.js';
import { h, fill, problem, notice, attempt, badge, time, table, values, field, more, json, ready } from '../ui.js';

export default async function render(root, { query: search }) {
  const servers = h('div', { 'aria-live': 'polite' });
  const catalog = h('div');
  const trying = h('div');
  const approvals = h('div', { 'aria-live': 'polite' });
  const approvalStatus = search.get('approvals') || 'pending';
  fill(root,
    h('h1', 'Tools'),
    h('section.card', { 'aria-labelledby': 'approvals-title' }, h('h2#approvals-title', 'Approvals'), approvalFilter(approvalStatus), approvals),
    h('section.card', { 'aria-labelledby': 'servers-title' }, h('h2#servers-title', 'MCP servers'), servers, registerForm(() => loadServers())),
    h('section.card', { 'aria-labelledby': 'catalog-title' }, h('h2#catalog-title', 'Tool catalog'), catalog, trying));

  async function loadServers() {
    await attempt(servers, async () => {
      const page = await api('/api/v1/mcp-servers?limit=50');
      fill(servers, serverTable(page.items, loadServers), more((cursor) => api(`/api/v1/mcp-servers${query({ limit: 50, cursor })}`), (items) => serverTable(items, loadServers), page.nextCursor));
    });
  }

  async function loadCatalog() {
    await attempt(catalog, async () => {
      const page = await api('/api/v1/tools');
      fill(catalog, table([
        { title: 'Tool', cell: (t) => h('code', t.qualifiedName) },
        { title: 'Description', cell: (t) => t.description ?? '' },
        { title: 'Held for approval', cell: (t) => t.requiresApproval ? 'yes' : 'no' },
        { title: '', cell: (t) => h('button.secondary', { type: 'button', onclick: () => showTryForm(trying, t) }, `Try ${t.name}`) },
      ], page.items, 'No tools: register an MCP server, or wait for it to start.'));
    });
  }

  async function loadApprovals() {
    await attempt(approvals, async () => {
      const page = await api(`/api/v1/approvals${query({ status: approvalStatus === 'all' ? '' : approvalStatus, limit: 50 })}`);
      fill(approvals, approvalTable(page.items, loadApprovals));
    });
  }

  await Promise.allSettled([loadServers(), loadCatalog(), loadApprovals()]);
  ready('tools');
  // The queue and the servers' status change on their own: refreshed while the page is open.
  const timer = setInterval(() => { loadApprovals(); }, 3000);
  return () => clearInterval(timer);
}

function approvalFilter(current) {
  const select = h('select', { name: 'approvals' }, ['pending', 'approved', 'denied', 'cancelled', 'all'].map((s) => h('option', { value: s, selected: s === current }, s)));
  select.addEventListener('change', () => { location.hash = `#/tools?approvals=${select.value}`; });
  return h('div.row', field('Show', select));
}

function approvalTable(items, reload) {
  return table([
    { title: 'Tool', cell: (a) => h('code', a.tool) },
    { title: 'Arguments', cell: (a) => json(a.arguments) },
    { title: 'Task', cell: (a) => h('a', { href: `#/tasks/${a.taskId}` }, a.taskId.slice(0, 8)) },
    { title: 'Requested', cell: (a) => time(a.requestedAt) },
    { title: 'Status', cell: (a) => [badge(a.status), a.decidedByName ? h('div.muted', `by ${a.decidedByName}${a.reason ? `: ${a.reason}` : ''}`) : ''] },
    { title: 'Decide', cell: (a) => a.status === 'pending' ? decision(a, reload) : '' },
  ], items, 'No approvals here.');
}

function decision(approval, reload) {
  const errors = h('div');
  const reason = h('input', { name: 'reason', maxlength: 500, 'aria-label': `Reason for ${approval.tool}` });
  const decide = (verb) => async (event) => {
    const done = await attempt(errors, () => api(`/api/v1/approvals/${approval.id}/${verb}`, { method: 'POST', body: { reason: reason.value || null } }), event.currentTarget);
    if (done) await reload();
  };
  return h('div', h('div.row', reason,
    h('button', { type: 'button', onclick: decide('approve') }, 'Approve'),
    h('button.danger', { type: 'button', onclick: decide('deny') }, 'Deny')), errors);
}

function serverTable(items, reload) {
  return table([
    { title: 'Name', cell: (s) => h('strong', s.name) },
    { title: 'Runs', cell: (s) => s.transport === 'stdio' ? h('code', [s.command, ...s.args].join(' ')) : h('code', s.url ?? '') },
    { title: 'Status', cell: (s) => [badge(s.enabled ? s.status.state : 'disabled'), h('div.muted', `${s.status.toolCount} tools, ${s.status.restartCount} restarts`)] },
    { title: 'Last error', cell: (s) => s.status.lastError ? h('span.error-text', s.status.lastError) : '' },
    { title: 'Approval', cell: (s) => s.requireApproval ? 'every tool' : s.approvalTools.join(', ') },
    { title: '', cell: (s) => serverActions(s, reload) },
  ], items, 'No MCP servers registered.');
}

function serverActions(server, reload) {
  const errors = h('div');
  const act = (action) => async (event) => {
    const done = await attempt(errors, action, event.currentTarget);
    if (done !== undefined) await reload();
  };
  return h('div', h('div.row',
    h('button.secondary', { type: 'button', onclick: act(() => api(`/api/v1/mcp-servers/${server.id}`, { method: 'PATCH', body: { enabled: !server.enabled } })) },
      server.enabled ? `Disable ${server.name}` : `Enable ${server.name}`),
    h('button.danger', { type: 'button', onclick: act(() => confirm(`Remove ${server.name}?`) ? api(`/api/v1/mcp-servers/${server.id}`, { method: 'DELETE' }).then(() => true) : undefined) }, `Remove ${server.name}`)),
  errors);
}

function registerForm(reload) {
  const errors = h('div');
  const form = h('form.stack', { 'aria-label': 'Register an MCP server' },
    field('Name (a slug)', h('input', { name: 'name', required: true })),
    field('Transport', h('select', { name: 'transport' }, h('option', { value: 'stdio' }, 'stdio (a command)'), h('option', { value: 'http' }, 'Streamable HTTP (a URL)'))),
    field('Command', h('input', { name: 'command' })),
    field('Arguments, one per line', h('textarea', { name: 'args', rows: 3 })),
    field('URL', h('input', { name: 'url', type: 'url' })),
    field('Tools held for approval (comma-separated)', h('input', { name: 'approvalTools' })),
    h('label.inline', h('input', { type: 'checkbox', name: 'requireApproval' }), 'Hold every tool of this server for approval'),
    h('button', { type: 'submit' }, 'Register'),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const body = v.transport === 'stdio'
      ? { name: v.name, transport: 'stdio', command: v.command, args: v.args.split('\n').map((a) => a.trim()).filter(Boolean) }
      : { name: v.name, transport: v.transport, url: v.url };
    body.requireApproval = v.requireApproval === 'on';
    body.approvalTools = v.approvalTools.split(',').map((t) => t.trim()).filter(Boolean);
    const created = await attempt(errors, () => api('/api/v1/mcp-servers', { method: 'POST', body }), form.querySelector('button[type=submit]'));
    if (created) {
      form.reset();
      errors.append(notice(`Registered ${created.name}.`));
      await reload();
    }
  });
  return h('details', h('summary', 'Register a server'), form);
}

/** A form for a tool's arguments, generated from its JSON schema; the answer (or the server's problem) below it. */
function showTryForm(where, tool) {
  const schema = tool.inputSchema ?? {};
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const answer = h('div', { 'aria-live': 'polite' });
  const inputs = Object.entries(properties).map(([name, property]) => [name, property, inputFor(name, property, required.has(name))]);
  const form = h('form.stack', { 'aria-label': `Call ${tool.qualifiedName}` },
    h('h3', `Call ${tool.qualifiedName}`),
    tool.description && h('p.muted', tool.description),
    inputs.map(([name, property, input]) => field(`${name}${required.has(name) ? ' (required)' : ''}${property.description ? ` — ${property.description}` : ''}`, input)),
    inputs.length === 0 && h('p.muted', 'This tool takes no arguments.'),
    h('button', { type: 'submit' }, 'Call'),
    answer);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const args = {};
    try {
      for (const [name, property, input] of inputs) {
        const value = readInput(property, input);
        if (value !== undefined) args[name] = value;
      }
    } catch (error) {
      fill(answer, problem({ problem: { title: 'An argument is not valid JSON.', detail: error.message } }));
      return;
    }
    const result = await attempt(answer, () => api(`/api/v1/tools/${encodeURIComponent(tool.server)}/${encodeURIComponent(tool.name)}/call`, { method: 'POST', body: { arguments: args } }),
      form.querySelector('button[type=submit]'));
    if (result) fill(answer, callResult(result));
  });
  fill(where, form);
  form.querySelector('input, select, textarea, button')?.focus();
}

function inputFor(name, property, isRequired) {
  const type = Array.isArray(property.type) ? property.type.find((t) => t !== 'null') : property.type;
  const common = { name, required: isRequired && type !== 'boolean' };
  if (Array.isArray(property.enum)) {
    return h('select', common, !isRequired && h('option', { value: '' }, ''), property.enum.map((v) => h('option', { value: JSON.stringify(v), selected: v === property.default }, String(v))));
  }
  switch (type) {
    case 'boolean': return h('input', { ...common, type: 'checkbox', checked: property.default === true });
    case 'integer': return h('input', { ...common, type: 'number', step: 1, min: property.minimum, max: property.maximum, value: property.default });
    case 'number': return h('input', { ...common, type: 'number', step: 'any', min: property.minimum, max: property.maximum, value: property.default });
    case 'object': case 'array': return h('textarea', { ...common, rows: 3, placeholder: type === 'array' ? '[ ... ] as JSON' : '{ ... } as JSON' });
    default: return h('input', { ...common, value: property.default });
  }
}

function readInput(property, input) {
  const type = Array.isArray(property.type) ? property.type.find((t) => t !== 'null') : property.type;
  if (input.type === 'checkbox') return input.checked;
  if (input.value === '') return undefined;
  if (input.tagName === 'SELECT') return JSON.parse(input.value);
  if (type === 'integer' || type === 'number') return Number(input.value);
  if (type === 'object' || type === 'array') return JSON.parse(input.value);
  return input.value;
}

function callResult(result) {
  return h('div.card', { role: 'status' },
    h('strong', result.isError ? 'The tool reported an error' : 'Result'),
    result.content.map((item) => {
      if (item.type === 'text') return h('pre.tool-text', item.text);
      if (item.type === 'image') return h('img', { src: `data:${item.mimeType};base64,${item.data}`, alt: 'An image the tool returned' });
      return json(item);
    }),
    result.structuredContent && [h('div.muted', 'Structured content'), json(result.structuredContent)]);
}
