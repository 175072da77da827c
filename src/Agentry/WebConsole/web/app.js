// The console's shell: sign-in, the header bar (sections, workspace, sign-out) and a hash router that loads one page
// module per section (#/section/param...?query). A page module exports default render(main, context), context being
// { params, query, me, section }, and may resolve to a function that stops its live streams when the page is left.
import { api, signIn, signOut, setWorkspace, currentWorkspace } from './api.js';
import { h, fill, problem, attempt } from './ui.js';

const sections = ['overview', 'agents', 'tasks', 'chat', 'knowledge', 'tools', 'admin'];
const main = document.getElementById('main');
const bar = document.querySelector('.bar');
let me = null;
let leave = null;
let signedIn = false;

function where() {
  const [path, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [section = 'overview', ...params] = path.split('/').map(decodeURIComponent);
  return { name: sections.includes(section) ? section : 'overview', params, search };
}

let generation = 0;

async function route() {
  if (!signedIn) return;
  // A newer navigation wins: a page whose module or data arrive after the next one started is dropped.
  const current = ++generation;
  const { name, params, search } = where();
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (typeof leave === 'function') leave();
  leave = null;
  delete document.body.dataset.ready;
  document.body.dataset.page = name;
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Agentry`;
  fill(main, h('h1', name[0].toUpperCase() + name.slice(1)), h('p.muted', 'Loading…'));
  try {
    const page = await import(`./pages/${name}.js`);
    if (current !== generation) return;
    const rendered = h('div');
    const context = { params, query: new URLSearchParams(search), me, section: name };
    const pending = page.default(rendered, context);
    fill(main, rendered);
    const stop = await pending;
    if (current === generation) leave = stop;
    else if (typeof stop === 'function') stop();
  } catch (error) {
    if (current === generation) fill(main, h('h1', 'Something went wrong'), problem(error));
  }
}

function showSignIn(error) {
  signedIn = false;
  generation++;
  document.body.dataset.page = 'signin';
  if (typeof leave === 'function') leave();
  bar.hidden = true;
  const errors = h('div');
  if (error) errors.append(problem(error));
  const form = h('form.stack.card', { 'aria-labelledby': 'signin-title' },
    h('h1#signin-title', 'Sign in to Agentry'),
    h('label', 'Email', h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true })),
    h('label', 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Sign in'),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    const done = await attempt(errors, () => signIn(form.email.value, form.password.value).then(() => true), button);
    if (done) await start();
  });
  fill(main, h('div.signin', form));
  form.email.focus();
  document.body.dataset.ready = 'signin';
}

function showShell() {
  bar.hidden = false;
  const select = document.getElementById('workspace');
  fill(select, me.memberships.map((m) => h('option', { value: m.workspaceId }, `${m.workspaceName} (${m.role})`)));
  if (!me.memberships.some((m) => m.workspaceId === currentWorkspace()) && me.memberships.length) setWorkspace(me.memberships[0].workspaceId);
  select.value = currentWorkspace();
  select.onchange = () => { setWorkspace(select.value); route(); };
  fill(document.getElementById('who'), me.displayName || me.email);
}

async function start() {
  // The page's module loads while /me is asked, so the page's own data is the only round trip after it.
  import(`./pages/${where().name}.js`).catch(() => {});
  try {
    me = await api('/api/v1/me');
  } catch (error) {
    showSignIn(error.status === 401 ? undefined : error);
    return;
  }
  signedIn = true;
  showShell();
  await route();
}

document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut().catch(() => {});
  me = null;
  showSignIn();
});
// On a narrow screen tables become one card per row (console.css) and each cell shows its column's title from
// data-label: filled in here for every table a page renders, whoever built it.
new MutationObserver(() => {
  for (const cell of main.querySelectorAll('td:not([data-label])')) {
    const header = cell.closest('table')?.querySelectorAll('thead th')[cell.cellIndex];
    cell.dataset.label = header?.textContent ?? '';
  }
}).observe(main, { childList: true, subtree: true });
window.addEventListener('hashchange', route);
window.addEventListener('agentry:signed-out', () => { if (signedIn) showSignIn(); });
start();
