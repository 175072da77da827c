// Small DOM helpers: elements are built with textContent (never innerHTML with data), so nothing the API returns can
// run as markup.

/** h('tag.class#id', { attr: value, onclick: fn }, ...children) */
export function h(spec, props = {}, ...children) {
  const [, tag = 'div', rest = ''] = /^([a-z0-9-]+)?(.*)$/i.exec(spec);
  const element = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === '.') element.classList.add(part.slice(1));
    else element.id = part.slice(1);
  }
  if (props === null || typeof props !== 'object' || props instanceof Node || Array.isArray(props)) {
    children.unshift(props);
    props = {};
  }
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key === 'value') element.value = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's content. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** An API error shown as the server wrote it: the problem's title, detail and field errors. */
export function problem(error) {
  const details = error?.problem ?? { title: error?.message ?? String(error) };
  const fields = details.errors ? Object.entries(details.errors) : [];
  return h('div.problem', { role: 'alert' },
    h('strong', details.title || 'Request failed'),
    details.detail && h('span', details.detail),
    fields.length > 0 && h('ul', fields.map(([field, messages]) => h('li', h('code', field), ': ', [].concat(messages).join(' ')))));
}

export const notice = (text) => h('div.notice', { role: 'status' }, text);

/** Runs an action for a button or form, showing its problem in `where` (cleared first); returns the result or undefined. */
export async function attempt(where, action, button) {
  where?.replaceChildren();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (where) where.append(problem(error));
    else console.error(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export const badge = (status) => h(`span.badge.${String(status).toLowerCase().replace(/[^a-z]/g, '')}`, String(status));

export function time(value) {
  if (!value) return '';
  const date = new Date(value);
  return h('time', { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

/** A table from columns [{ title, cell: row => node }] and rows; an empty message when there are none. */
export function table(columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p.muted', empty);
  return h('div.scroll', h('table',
    h('thead', h('tr', columns.map((c) => h('th', { scope: 'col' }, c.title)))),
    h('tbody', rows.map((row) => h('tr', columns.map((c) => h('td', { 'data-label': c.title }, c.cell(row))))))));
}

/** The values of a form's named fields. */
export function values(form) {
  const result = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (!(value instanceof File)) result[key] = value;
  }
  return result;
}

/** A labelled field. */
export function field(label, input) {
  return h('label', label, input);
}

/** A "More" button for cursor paging: calls load(cursor) and appends what it renders. */
export function pager(load, cursor, into) {
  if (!cursor) return h('span');
  const errors = h('div');
  const button = h('button.secondary', { type: 'button' }, 'More');
  button.addEventListener('click', async () => {
    const next = await attempt(errors, () => load(cursor), button);
    if (next !== undefined) {
      button.parentElement.replaceWith(next);
    }
  });
  return h('div', button, errors);
}

/** A "More" button whose load appends the next page itself, showing its problem if it fails. */
export function moreButton(load) {
  const errors = h('div');
  const button = h('button.secondary', { type: 'button' }, 'More');
  button.addEventListener('click', () => attempt(errors, load, button));
  return h('div', button, errors);
}

/** Cursor paging that goes on: fetchPage(cursor) resolves to a page ({ items, nextCursor }), rows(items) renders it. */
export function more(fetchPage, rows, cursor) {
  return pager(async (next) => {
    const page = await fetchPage(next);
    return h('div', rows(page.items), more(fetchPage, rows, page.nextCursor));
  }, cursor);
}

/** Pretty JSON. */
export const json = (value) => h('pre', JSON.stringify(value, null, 2));

/** Marks the page ready for the clock (performance.mark) once its first data is on screen. */
export function ready(name) {
  // A page left before its data came is not the one on screen.
  if (document.body.dataset.page !== name) return;
  performance.mark(`console:${name}:interactive`);
  document.body.dataset.ready = name;
}
