// Overview: the queue's depth by status, recent tasks, dead letters and today's token usage, read in parallel and
// refreshed every 5 s while the page is visible.
import { api } from '../api.js';
import { h, fill, problem, badge, time, table, ready } from '../ui.js';

const statuses = ['queued', 'running', 'waiting', 'succeeded', 'dead', 'cancelled'];

export default async function render(root) {
  const counts = h('div.grid', { 'aria-live': 'polite' });
  const recent = h('div');
  const dead = h('div');
  const usage = h('div.grid');
  fill(root,
    h('h1', 'Overview'),
    h('section.card', { 'aria-labelledby': 'queue-title' }, h('h2#queue-title', 'Tasks by status'), counts),
    h('section.card', { 'aria-labelledby': 'usage-title' }, h('h2#usage-title', 'Token usage today (UTC)'), usage),
    h('section.card', { 'aria-labelledby': 'recent-title' }, h('h2#recent-title', 'Recent tasks'), recent),
    h('section.card', { 'aria-labelledby': 'dead-title' }, h('h2#dead-title', 'Dead letters'), dead));

  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  const taskColumns = [
    { title: 'Task', cell: (t) => h('a', { href: `#/tasks/${t.id}` }, t.id.slice(0, 8)) },
    { title: 'Status', cell: (t) => badge(t.status) },
    { title: 'Agent', cell: (t) => t.agentId ? h('a', { href: `#/agents/${t.agentId}` }, t.agentId.slice(0, 8)) : '' },
    { title: 'Created', cell: (t) => time(t.createdAt) },
  ];
  const show = (where, promise, view) => promise.then((value) => fill(where, view(value)), (error) => fill(where, problem(error)));
  const load = () => Promise.allSettled([
    show(counts, api('/api/v1/tasks/counts'), (c) => statuses.map((s) =>
      h('div', h('div.stat', { 'data-status': s }, String(c[s])), h('a', { href: `#/tasks?status=${s}` }, s)))),
    show(usage, api(`/api/v1/usage?from=${encodeURIComponent(today.toISOString())}`), (u) => [
      h('div', h('div.stat#tokens-today', String(u.totals.totalTokens)), 'tokens'),
      h('div', h('div.stat', String(u.totals.promptTokens)), 'prompt'),
      h('div', h('div.stat', String(u.totals.completionTokens)), 'completion'),
      h('div', h('div.stat', String(u.totals.calls)), 'model calls'),
    ]),
    show(recent, api('/api/v1/tasks?limit=10'), (p) => table(taskColumns, p.items, 'No tasks yet.')),
    show(dead, api('/api/v1/tasks?status=dead&limit=10'), (p) => table(taskColumns, p.items, 'No dead tasks.')),
  ]);
  await load();
  ready('overview');
  // The queue moves on its own: the page follows it while it is open and visible.
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return () => clearInterval(timer);
}
