// Tasks: the workspace's tasks filtered (status, agent, creation time) a page at a time, their status kept current while
// any shown is unfinished, and a submit form; a task's page shows it with its event timeline live (the task's own SSE
// stream, resumed after a drop) and cancels, requeues or discards it. #/tasks?status=…&agentId=…, #/tasks/{id}.
import { api, send, query } from '../api.js';
import { follow } from '../sse.js';
import { h, fill, problem, attempt, notice, badge, time, json, ready, moreButton } from '../ui.js';

const statuses = ['queued', 'running', 'waiting', 'succeeded', 'dead', 'cancelled'];
const isFinal = (status) => status === 'succeeded' || status === 'dead' || status === 'cancelled';
const PAGE = 25;
const REFRESH_MS = 2000;
const REFRESH_MOST = 20;
const short = (id) => String(id).slice(0, 8);

// A message for the task page a submission moves to (e.g. that its Idempotency-Key was used before).
let flash = null;

export default async function render(root, { params, query: search }) {
  return params[0] ? detail(root, params[0]) : list(root, search);
}

// ---- the list

/** A datetime-local value (the browser's zone) for an ISO time, and back. */
function toLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return '';
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

async function list(root, search) {
  const filters = {
    status: search.get('status') ?? '',
    agentId: search.get('agentId') ?? '',
    createdAfter: search.get('createdAfter') ?? '',
    createdBefore: search.get('createdBefore') ?? '',
  };
  const agentsRequest = api(`/api/v1/agents${query({ limit: 200, sort: 'name' })}`);
  const tasksRequest = api(`/api/v1/tasks${query({ ...filters, limit: PAGE })}`);

  const results = h('div', h('p.muted', 'Loading…'));
  const live = h('p.muted', { role: 'status' });
  const filterErrors = h('div');
  const agentFilter = h('select', { name: 'agentId' }, h('option', { value: '' }, 'Any agent'));
  const statusFilter = h('select', { name: 'status' }, h('option', { value: '' }, 'Any status'), statuses.map((s) => h('option', { value: s }, s)));
  statusFilter.value = filters.status;
  const after = h('input', { type: 'datetime-local', name: 'createdAfter', value: toLocalInput(filters.createdAfter) });
  const before = h('input', { type: 'datetime-local', name: 'createdBefore', value: toLocalInput(filters.createdBefore) });
  const filterForm = h('form.row', { 'aria-label': 'Filter tasks' },
    h('label', 'Status', statusFilter),
    h('label', 'Agent', agentFilter),
    h('label', 'Created after', after),
    h('label', 'Created before', before),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '#/tasks' }, 'Clear'));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/tasks${query({
      status: statusFilter.value, agentId: agentFilter.value, createdAfter: fromLocalInput(after.value), createdBefore: fromLocalInput(before.value),
    })}`;
  });
  const title = filters.status === 'dead' ? 'Dead letters' : 'Tasks';
  fill(root,
    h('h1', title),
    h('section.card', { 'aria-labelledby': 'list-title' },
      h('h2#list-title', 'Newest first'), filterForm, filterErrors, live, results),
    h('section.card', { 'aria-labelledby': 'submit-title' }, h('h2#submit-title', 'Submit a task'), taskForm({ agents: agentsRequest, selected: filters.agentId })));

  const names = new Map();
  const shown = new Map(); // task id → { task, tr }
  const rows = h('tbody');
  const more = h('div');
  const cells = (t) => [
    h('td', h('a', { href: `#/tasks/${t.id}`, 'aria-label': `Task ${t.id}` }, h('code', short(t.id)))),
    h('td', badge(t.status)),
    h('td', h('a', { href: `#/agents/${t.agentId}` }, names.get(t.agentId) ?? short(t.agentId))),
    h('td', `${t.attempts} / ${t.maxAttempts}`),
    h('td', time(t.createdAt)),
    h('td', time(t.finishedAt)),
  ];
  const put = (t) => {
    const known = shown.get(t.id);
    if (known) {
      known.task = t;
      known.tr.replaceChildren(...cells(t));
    } else {
      const tr = h('tr', { dataset: { id: t.id, status: t.status } }, cells(t));
      shown.set(t.id, { task: t, tr });
      rows.append(tr);
    }
    shown.get(t.id).tr.dataset.status = t.status;
  };
  const add = (page) => {
    page.items.forEach(put);
    fill(more, page.nextCursor ? moreButton(async () => add(await api(`/api/v1/tasks${query({ ...filters, limit: PAGE, cursor: page.nextCursor })}`))) : null);
    describeLive();
  };
  const describeLive = () => {
    const open = [...shown.values()].filter((s) => !isFinal(s.task.status)).length;
    fill(live, open ? `${open} unfinished task${open === 1 ? '' : 's'} shown: their status updates as it changes.` : '');
  };

  const [agents, tasks] = await Promise.allSettled([agentsRequest, tasksRequest]);
  if (agents.status === 'fulfilled') {
    for (const a of agents.value.items) names.set(a.id, a.name);
    agentFilter.append(...agents.value.items.map((a) => h('option', { value: a.id }, a.name)));
  }
  if (filters.agentId && !names.has(filters.agentId)) agentFilter.append(h('option', { value: filters.agentId }, short(filters.agentId)));
  agentFilter.value = filters.agentId;
  if (agents.status === 'rejected') fill(filterErrors, problem(agents.reason));
  if (tasks.status === 'fulfilled') {
    fill(results, tasks.value.items.length
      ? [h('div.scroll', h('table', h('thead', h('tr', ['Task', 'Status', 'Agent', 'Attempts', 'Created', 'Finished'].map((c) => h('th', { scope: 'col' }, c)))), rows)), more]
      : h('p.muted', filters.status || filters.agentId || filters.createdAfter || filters.createdBefore ? 'No task matches.' : 'No tasks yet.'));
    add(tasks.value);
  } else {
    fill(results, problem(tasks.reason));
  }
  ready('tasks');

  // Live status: the unfinished rows shown are read again every REFRESH_MS (at most REFRESH_MOST per round, the
  // longest unrefreshed first). Polling, not a stream per row: a browser keeps only six connections per server.
  let timer = null;
  let stopped = false;
  const refreshed = new Map();
  const tick = async () => {
    const open = [...shown.values()].filter((s) => !isFinal(s.task.status))
      .sort((a, b) => (refreshed.get(a.task.id) ?? 0) - (refreshed.get(b.task.id) ?? 0)).slice(0, REFRESH_MOST);
    await Promise.allSettled(open.map(async ({ task }) => {
      refreshed.set(task.id, Date.now());
      const now = await api(`/api/v1/tasks/${task.id}`);
      if (!stopped) put(now);
    }));
    if (stopped) return;
    describeLive();
    timer = setTimeout(tick, REFRESH_MS);
  };
  timer = setTimeout(tick, REFRESH_MS);
  return () => { stopped = true; clearTimeout(timer); };
}

/**
 * The submit form: an agent (fixed by `agentId`, or picked from `agents`, a promise of a page of them), the input as
 * JSON and an optional Idempotency-Key; a submission opens the task's page. `selected` pre-picks an agent.
 */
export function taskForm({ agentId, agents, selected = '' } = {}) {
  const errors = h('div');
  const picker = h('div');
  if (!agentId) {
    const select = h('select', { name: 'agentId' }, h('option', { value: '' }, 'Loading agents…'));
    fill(picker, h('label', 'Agent', select));
    Promise.resolve(agents).then((page) => {
      fill(select, h('option', { value: '' }, page.items.length ? 'Choose an agent' : 'No agents yet'),
        page.items.map((a) => h('option', { value: a.id }, `${a.name} (${a.kind})`)));
      if (page.items.some((a) => a.id === selected)) select.value = selected;
    }, () => {
      // Without the list, the agent can still be named by its id.
      fill(picker, h('label', 'Agent id', h('input', { name: 'agentId', autocomplete: 'off' })));
    });
  }
  const form = h('form.stack', { novalidate: true },
    picker,
    h('label', 'Input (JSON)', h('textarea', { name: 'input', rows: 5, spellcheck: 'false', value: '{}' })),
    h('label', 'Idempotency-Key (optional: the same key submits once)', h('input', { name: 'idempotencyKey', autocomplete: 'off' })),
    h('details',
      h('summary', 'More options'),
      h('div.row',
        h('label', 'Priority (0-9)', h('input', { name: 'priority', type: 'number', min: 0, max: 9, inputmode: 'numeric' })),
        h('label', 'Max attempts', h('input', { name: 'maxAttempts', type: 'number', min: 1, max: 100, inputmode: 'numeric' })),
        h('label', 'Time limit per attempt (s)', h('input', { name: 'timeoutSeconds', type: 'number', min: 1, max: 86400, inputmode: 'numeric' })),
        h('label', 'Not before', h('input', { name: 'runAt', type: 'datetime-local' })))),
    h('div', h('button', { type: 'submit' }, 'Submit task')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const field = (name) => form.elements.namedItem(name)?.value.trim() ?? '';
    const int = (name) => (field(name) === '' ? undefined : Number(field(name)));
    const key = field('idempotencyKey');
    const submitted = await attempt(errors, async () => {
      let input;
      try {
        input = field('input') === '' ? undefined : JSON.parse(field('input'));
      } catch (error) {
        throw Object.assign(new Error('The input is not valid JSON.'), { problem: { title: 'The input is not valid JSON.', detail: error.message } });
      }
      const body = {
        agentId: agentId ?? (field('agentId') || null), input,
        priority: int('priority'), maxAttempts: int('maxAttempts'), timeoutSeconds: int('timeoutSeconds'), runAt: fromLocalInput(field('runAt')) || undefined,
      };
      const response = await send('/api/v1/tasks', { method: 'POST', body, headers: key ? { 'Idempotency-Key': key } : {} });
      return { task: await response.json(), replayed: response.headers.get('Idempotent-Replayed') === 'true' };
    }, form.querySelector('button[type=submit]'));
    if (submitted) {
      const { task, replayed } = submitted;
      flash = notice(replayed
        ? `The Idempotency-Key "${key}" was used before: this is the task it submitted then (nothing new was submitted).`
        : `Submitted: task ${task.id}.`);
      location.hash = `#/tasks/${task.id}`;
    }
  });
  return form;
}

// ---- one task

/** An event's data in a line: the fields people read, then any others as JSON. */
function describe(type, data) {
  if (data === null || data === undefined) return '';
  if (typeof data !== 'object' || Array.isArray(data)) return JSON.stringify(data);
  const { attempt: number, attempts, error, retryable, reason, runAt, delayMs, ...rest } = data;
  const parts = [];
  if (number !== undefined) parts.push(`attempt ${number}`);
  if (attempts !== undefined) parts.push(`after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
  if (error) parts.push(`${error}${retryable === false ? ' (not retried)' : ''}`);
  if (reason) parts.push(reason);
  if (runAt) parts.push(`next run ${new Date(runAt).toLocaleTimeString()}${delayMs !== undefined ? ` (in ${(delayMs / 1000).toFixed(1)} s)` : ''}`);
  if (Object.keys(rest).length) parts.push(JSON.stringify(rest));
  return parts.join(' · ');
}

async function detail(root, id) {
  const heading = h('h1', `Task ${short(id)}`);
  const summary = h('div', { 'aria-live': 'polite' }, h('p.muted', 'Loading…'));
  const buttons = h('div.row.actions');
  const answer = h('div');
  const io = h('div');
  const state = h('div.muted', { role: 'status' }, 'Connecting…');
  const timeline = h('ol.timeline', { 'aria-label': 'Events, oldest first', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const shownFlash = flash;
  flash = null;
  fill(root,
    h('p', h('a', { href: '#/tasks' }, '← All tasks')),
    heading,
    shownFlash,
    h('section.card', { 'aria-labelledby': 'task-title' }, h('h2#task-title', 'Task'), summary, buttons, answer),
    h('section.card', { 'aria-labelledby': 'events-title' }, h('h2#events-title', 'Events'), state, timeline),
    io);

  let task = null;
  let agentName = null;
  const showTask = () => {
    const t = task;
    fill(summary, h('dl.facts',
      h('dt', 'Status'), h('dd#task-status', { dataset: { status: t.status } }, badge(t.status), t.cancelRequested && !isFinal(t.status) ? ' (cancel requested)' : ''),
      h('dt', 'Agent'), h('dd', h('a', { href: `#/agents/${t.agentId}` }, agentName ?? short(t.agentId)), ` (version ${t.agentVersion}, ${t.kind})`),
      h('dt', 'Attempts'), h('dd', `${t.attempts} of ${t.maxAttempts}`),
      h('dt', 'Priority'), h('dd', String(t.priority)),
      h('dt', 'Time limit'), h('dd', `${t.timeoutSeconds} s per attempt`),
      h('dt', 'Created'), h('dd', time(t.createdAt)),
      h('dt', 'Runs at'), h('dd', time(t.runAt)),
      t.startedAt && [h('dt', 'Started'), h('dd', time(t.startedAt))],
      t.finishedAt && [h('dt', 'Finished'), h('dd', time(t.finishedAt))],
      t.reason && [h('dt', 'Reason'), h('dd', t.reason)],
      t.idempotencyKey && [h('dt', 'Idempotency-Key'), h('dd', h('code', t.idempotencyKey))],
      t.scheduleId && [h('dt', 'Schedule'), h('dd', h('code', t.scheduleId))],
      h('dt', 'Id'), h('dd', h('code', t.id))));
    fill(buttons,
      !isFinal(t.status) && actionButton('Cancel task', 'cancel', 'danger'),
      t.status === 'dead' && actionButton('Requeue', 'requeue'),
      t.status === 'dead' && actionButton('Discard', 'discard', 'danger'));
    fill(io,
      h('section.card', { 'aria-labelledby': 'input-title' }, h('h2#input-title', 'Input'), json(t.input)),
      t.result !== null && t.result !== undefined && h('section.card', { 'aria-labelledby': 'result-title' }, h('h2#result-title', 'Result'), json(t.result)),
      t.lastError && h('section.card', { 'aria-labelledby': 'error-title' }, h('h2#error-title', 'Last error'), h('pre', t.lastError)));
  };
  const actionButton = (label, action, style = '') => {
    const button = h(`button${style ? `.${style}` : ''}`, { type: 'button' }, label);
    button.addEventListener('click', async () => {
      const changed = await attempt(answer, () => api(`/api/v1/tasks/${id}/${action}`, { method: 'POST' }), button);
      if (changed) {
        task = changed;
        fill(answer, notice(`${label}: the server answered with the task ${changed.status}${changed.cancelRequested && !isFinal(changed.status) ? ' (cancel requested)' : ''}.`));
        showTask();
        // The stream ended with the task (or is about to): read on from the last event shown.
        listen();
      }
    });
    return button;
  };

  // The task is read again after every event that may change it and after a reconnect, one read at a time; a read
  // that fails (e.g. offline) is tried again, so the status shown does not stay behind the timeline.
  let reading = null;
  let again = false;
  let left = false;
  let retry = null;
  const read = () => {
    if (reading) { again = true; return reading; }
    clearTimeout(retry);
    reading = api(`/api/v1/tasks/${id}`).then((t) => { task = t; showTask(); }, (error) => {
      if (!task) fill(summary, problem(error));
      else if (!left) retry = setTimeout(read, REFRESH_MS);
    }).finally(() => {
      reading = null;
      if (again && !left) { again = false; read(); }
    });
    return reading;
  };

  let lastSeq;
  let ended = false; // the last event read ends the task (a requeue reopens it)
  let stream = null;
  const onEvent = (e) => {
    lastSeq = e.id;
    const { seq, type, at, data } = e.data;
    if (type === 'succeeded' || type === 'dead' || type === 'cancelled') ended = true;
    else if (type === 'requeued') ended = false;
    timeline.append(h('li', { dataset: { seq: String(seq), type } },
      h('code', `#${seq}`), ' ', badge(type), ' ', time(at), ' ', h('span', describe(type, data))));
    if (type !== 'progress') read();
  };
  const onState = (s) => {
    if (s === 'live') {
      fill(state, ended ? 'Reading the last events…' : 'Live: events appear as they happen.');
      if (task) read(); // what changed while the connection was down
    }
    else if (s === 'reconnecting') fill(state, 'Connection lost: reconnecting, and resuming after the last event shown…');
    else if (s === 'offline') fill(state, 'Offline: the timeline resumes after the last event shown when the network is back.');
    else if (s === 'ended') fill(state, 'The task has ended: no more events.');
    else fill(state, problem(s));
    state.dataset.state = typeof s === 'string' ? s : 'error';
  };
  const listen = () => {
    stream?.close();
    fill(state, 'Connecting…');
    state.dataset.state = 'connecting';
    stream = follow(`/api/v1/tasks/${id}/events`, { onEvent, onState, isDone: () => ended, after: lastSeq });
  };
  listen();

  await read();
  if (task) {
    api(`/api/v1/agents/${task.agentId}`).then((a) => { agentName = a.name; showTask(); }, () => {});
  }
  ready('tasks');
  return () => {
    left = true;
    clearTimeout(retry);
    stream?.close();
  };
}
