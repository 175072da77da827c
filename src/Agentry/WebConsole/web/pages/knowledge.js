// Knowledge: the workspace's collections and a form for a new one. A collection's page lists its documents with the
// progress of each ingestion step (extract, chunk, embed, index), read again every second while any document is still
// queued or processing; uploads files (one multipart request per file, field 'file'); deletes a document; and searches
// by vector, keyword or both (hybrid), showing each hit's document, score and chunk text.
import { api, query } from '../api.js';
import { h, fill, problem, attempt, badge, time, table, pager, values, field, notice, ready } from '../ui.js';

const base = '/api/v1/collections';
const modes = [['hybrid', 'Hybrid (vector and keyword)'], ['vector', 'Vector'], ['keyword', 'Keyword']];
const accept = '.txt,.text,.md,.markdown,.html,.htm,.pdf,.json,.csv,text/plain,text/markdown,text/html,application/pdf,application/json,text/csv';
const settled = (d) => d.status === 'ready' || d.status === 'failed';
const number = (text) => (text === undefined || text === '' ? undefined : Number(text));

export default function render(root, { params }) {
  return params[0] ? collection(root, params[0]) : collections(root);
}

// ---- Collections ----

async function collections(root) {
  const list = h('div.collections', h('p.muted', 'Loading…'));
  const errors = h('div');
  const submit = h('button', { type: 'submit' }, 'Create collection');
  const form = h('form.stack', { 'aria-labelledby': 'new-collection-title' },
    field('Name', h('input', { name: 'name', required: true, maxlength: 100 })),
    field('Description (optional)', h('textarea', { name: 'description', rows: 2 })),
    h('div.row',
      field('Chunk size in tokens (optional)', h('input', { name: 'chunkTokens', type: 'number', min: 16, max: 8192 })),
      field('Chunk overlap in tokens (optional)', h('input', { name: 'chunkOverlap', type: 'number', min: 0, max: 4096 })),
      field('Vector store', h('select', { name: 'vectorProvider' },
        h('option', { value: 'embedded' }, 'embedded'), h('option', { value: 'chroma' }, 'chroma'), h('option', { value: 'qdrant' }, 'qdrant')))),
    h('div.row', submit),
    errors);
  fill(root,
    h('h1', 'Knowledge'),
    h('section.card', { 'aria-labelledby': 'collections-title' }, h('h2#collections-title', 'Collections'), list),
    h('section.card', { 'aria-labelledby': 'new-collection-title' }, h('h2#new-collection-title', 'New collection'), form));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const body = {
      name: v.name, description: v.description || undefined, vectorProvider: v.vectorProvider,
      chunkTokens: number(v.chunkTokens), chunkOverlap: number(v.chunkOverlap),
    };
    const created = await attempt(errors, () => api(base, { method: 'POST', body }), submit);
    if (created) location.hash = `#/knowledge/${created.id}`;
  });

  const columns = [
    { title: 'Collection', cell: (c) => h('a', { href: `#/knowledge/${c.id}` }, c.name) },
    { title: 'Description', cell: (c) => c.description ?? '' },
    { title: 'Embedding model', cell: (c) => `${c.embeddingModel} (${c.dimensions})` },
    { title: 'Chunks', cell: (c) => `${c.chunkTokens} tokens, ${c.chunkOverlap} overlap` },
    { title: 'Vectors', cell: (c) => c.vectorProvider },
    { title: 'Created', cell: (c) => time(c.createdAt) },
  ];
  const page = (cursor) => api(`${base}${query({ limit: 50, cursor })}`)
    .then((p) => h('div', table(columns, p.items, 'No collections yet.'), pager(page, p.nextCursor)));
  await page().then((node) => fill(list, node), (error) => fill(list, problem(error)));
  ready('knowledge');
}

// ---- One collection ----

async function collection(root, id) {
  const heading = h('h1', 'Collection');
  const about = h('div');
  const summary = h('p.muted', { role: 'status' });
  const listArea = h('div', h('p.muted', 'Loading…'));
  const moreArea = h('div');
  const pollErrors = h('div');
  const tbody = h('tbody');
  const docsTable = h('div.scroll', h('table.documents',
    h('thead', h('tr', ['Document', 'Status', 'Ingestion', 'Chunks', 'Size', 'Added', ''].map((t) => h('th', { scope: 'col' }, t)))),
    tbody));
  const empty = h('p.muted', 'No documents yet: upload some below.');

  const files = h('input#upload-files', { type: 'file', name: 'file', multiple: true, accept, required: true });
  const uploadButton = h('button', { type: 'submit' }, 'Upload');
  const uploadResults = h('div', { role: 'status' });
  const upload = h('form.stack', { 'aria-labelledby': 'upload-title' },
    field('Files (text, Markdown, HTML, PDF, JSON or CSV)', files), h('div.row', uploadButton), uploadResults);

  const searchButton = h('button', { type: 'submit' }, 'Search');
  const searchErrors = h('div');
  const results = h('div', { 'aria-live': 'polite' });
  const search = h('form.stack', { role: 'search', 'aria-labelledby': 'search-title' },
    field('Search for', h('input', { name: 'query', type: 'search', required: true })),
    h('fieldset.modes', h('legend', 'Mode'), modes.map(([value, label], i) =>
      h('label.inline', h('input', { type: 'radio', name: 'mode', value, checked: i === 0 }), label))),
    h('div.row', field('Results', h('input', { name: 'topK', type: 'number', min: 1, max: 50, value: '5' })), searchButton),
    searchErrors, results);

  fill(root,
    h('p', h('a', { href: '#/knowledge' }, '← Collections')),
    heading, about,
    h('section.card', { 'aria-labelledby': 'documents-title' }, h('h2#documents-title', 'Documents'), summary, listArea, moreArea, pollErrors),
    h('section.card', { 'aria-labelledby': 'upload-title' }, h('h2#upload-title', 'Upload documents'), upload),
    h('section.card', { 'aria-labelledby': 'search-title' }, h('h2#search-title', 'Search'), search));

  // Documents by id: their rows are updated in place, so a refresh keeps focus and scroll where they were.
  const documents = new Map();
  const deleted = new Set();
  let timer = null;
  let closed = false;

  function upsert(doc, { first = false } = {}) {
    // A refresh that was under way when the document was deleted does not bring it back.
    if (deleted.has(doc.id)) return;
    const known = documents.get(doc.id);
    if (known) {
      known.doc = doc;
      const contents = cellsOf(doc);
      known.cells.forEach((cell, i) => fill(cell, contents[i]));
      known.row.dataset.status = doc.status;
      showTable();
      return;
    }
    const cells = cellsOf(doc).map((content) => h('td', content));
    const remove = h('button.secondary', { type: 'button', 'aria-label': `Delete ${doc.name}` }, 'Delete');
    const removeErrors = h('div');
    const row = h('tr', { dataset: { documentId: doc.id, status: doc.status } }, cells, h('td', remove, removeErrors));
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete ${documents.get(doc.id)?.doc.name ?? doc.name} with its chunks and vectors?`)) return;
      const done = await attempt(removeErrors, () => api(`${base}/${id}/documents/${doc.id}`, { method: 'DELETE' }).then(() => true), remove);
      if (done) {
        deleted.add(doc.id);
        row.remove();
        documents.delete(doc.id);
        showTable();
      }
    });
    documents.set(doc.id, { doc, row, cells });
    if (first) tbody.prepend(row);
    else tbody.append(row);
    showTable();
  }

  function showTable() {
    const shown = documents.size ? docsTable : empty;
    if (listArea.firstChild !== shown) fill(listArea, shown);
    const all = [...documents.values()].map((d) => d.doc);
    const counts = {};
    for (const d of all) counts[d.status] = (counts[d.status] ?? 0) + 1;
    const text = all.length
      ? `${counts.ready ?? 0} of ${all.length} shown ready` + ['queued', 'processing', 'failed'].filter((s) => counts[s]).map((s) => `, ${counts[s]} ${s}`).join('')
      : '';
    if (summary.textContent !== text) summary.textContent = text;
  }

  // While anything is on its way, the newest documents are read again (as many as are shown, so each row is updated).
  function schedule(delay = 1000) {
    clearTimeout(timer);
    if (closed || [...documents.values()].every((d) => settled(d.doc))) return;
    timer = setTimeout(async () => {
      try {
        const p = await api(`${base}/${id}/documents${query({ limit: Math.min(200, Math.max(50, documents.size)) })}`);
        for (const doc of p.items.toReversed()) upsert(doc, { first: !documents.has(doc.id) });
        pollErrors.replaceChildren();
        schedule();
      } catch (error) {
        fill(pollErrors, problem(error));
        if (!(error.status >= 400 && error.status < 500 && error.status !== 429)) schedule(5000);
      }
    }, delay);
  }

  const morePage = async (cursor) => {
    const p = await api(`${base}/${id}/documents${query({ limit: 50, cursor })}`);
    for (const doc of p.items) upsert(doc);
    return pager(morePage, p.nextCursor);
  };

  upload.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = [...files.files];
    if (!chosen.length) return;
    uploadResults.replaceChildren();
    uploadButton.disabled = true;
    // One at a time, in the order chosen: each is its own request and its own answer.
    for (const file of chosen) {
      const body = new FormData();
      body.append('file', file, file.name);
      try {
        const added = await api(`${base}/${id}/documents`, { method: 'POST', body });
        upsert(added.document, { first: !documents.has(added.document.id) });
        uploadResults.append(notice(added.duplicate
          ? `${file.name}: the collection already has this content, as ${added.document.name}.`
          : `${file.name}: added, ingesting.`));
      } catch (error) {
        uploadResults.append(h('div', h('strong', file.name), problem(error)));
      }
    }
    uploadButton.disabled = false;
    files.value = '';
    schedule(500);
  });

  search.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(search);
    const body = { query: v.query, mode: v.mode, topK: number(v.topK) };
    const found = await attempt(searchErrors, () => api(`${base}/${id}/search`, { method: 'POST', body }), searchButton);
    if (!found) return;
    fill(results,
      h('p', `${found.results.length} result${found.results.length === 1 ? '' : 's'} by ${found.mode} search`),
      found.results.length > 0 && h('ol.hits', { dataset: { mode: found.mode } }, found.results.map((hit) => h('li.hit', { dataset: { documentId: hit.documentId } },
        h('div.hit-head',
          h('strong', hit.documentName),
          h('span.muted', ` · score ${Number(hit.score.toPrecision(4))} · chunk ${hit.position}`),
          hit.headingPath && h('span.muted', ` · ${hit.headingPath}`),
          hit.page != null && h('span.muted', ` · page ${hit.page}`)),
        h('blockquote.chunk', hit.text)))));
  });

  await Promise.allSettled([
    api(`${base}/${id}`).then((c) => {
      heading.textContent = c.name;
      document.title = `${c.name} · Knowledge · Agentry`;
      fill(about,
        c.description && h('p', c.description),
        h('p.muted', `Embedding model ${c.embeddingModel} (${c.dimensions} dimensions) · chunks of ${c.chunkTokens} tokens, ${c.chunkOverlap} overlap · vectors: ${c.vectorProvider} · created `, time(c.createdAt)));
    }, (error) => fill(about, problem(error))),
    api(`${base}/${id}/documents${query({ limit: 50 })}`).then((p) => {
      for (const doc of p.items) upsert(doc);
      showTable();
      fill(moreArea, pager(morePage, p.nextCursor));
      schedule();
    }, (error) => fill(listArea, problem(error))),
  ]);
  ready('knowledge');
  return () => {
    closed = true;
    clearTimeout(timer);
  };
}

/** The cells of a document's row but the last (its delete button). */
function cellsOf(d) {
  const done = d.steps.filter((s) => s.status === 'done').length;
  return [
    [h('span.doc-name', d.name), d.sourceUrl && h('div.muted', d.sourceUrl)],
    [badge(d.status), d.error && h('div.error', d.error)],
    h('div.ingestion',
      h('progress', { max: d.steps.length, value: done, 'aria-label': `${d.name}: ${done} of ${d.steps.length} steps done` }),
      h('ol.steps', d.steps.map((s) => h(`li.step.${s.status}`, { dataset: { step: s.name, status: s.status } }, `${s.name} `, h('span.muted', s.status))))),
    String(d.chunkCount),
    size(d.sizeBytes),
    time(d.createdAt),
  ];
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
