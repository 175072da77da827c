// Chat: the workspace's conversations, and a new one with a model or an llm agent (and, if wanted, knowledge collections
// searched for every message). A conversation shows its messages and a composer. A reply streams in token by token as
// the Server-Sent Events of the POST itself; Stop asks the API to cancel it (POST …/cancel: dropping the request would
// not stop it, a reply goes on when its client leaves); a reply shows the knowledge its prompt held (citations) and its
// token usage. A reply still being written when the page opens, or whose stream dropped, is followed live through
// GET …/events, resumed after the last event seen, so no token is lost or shown twice.
import { api, send, query } from '../api.js';
import { readEvents, follow } from '../sse.js';
import { h, fill, problem, notice, attempt, badge, time, table, pager, values, field, ready } from '../ui.js';

const base = '/api/v1/conversations';
const finals = new Set(['reply.completed', 'reply.cancelled', 'reply.failed']);

export default function render(root, { params }) {
  return params[0] ? conversation(root, params[0]) : conversations(root);
}

// ---- The list and the new-conversation form ----

async function conversations(root) {
  const list = h('div.conversations', h('p.muted', 'Loading…'));
  const choice = h('select#chat-with', { name: 'with', required: true }, h('option', { value: '' }, 'Loading…'));
  const choiceNotes = h('div');
  const sources = h('div.choices', h('p.muted', 'Loading…'));
  const errors = h('div');
  const submit = h('button', { type: 'submit' }, 'Start conversation');
  const form = h('form.stack', { 'aria-labelledby': 'new-title' },
    field('Title (optional)', h('input', { name: 'title', maxlength: 200 })),
    field('Model or agent', choice),
    choiceNotes,
    field('System prompt (optional; an agent has its own)', h('textarea', { name: 'systemPrompt', rows: 3 })),
    h('fieldset', h('legend', 'Knowledge collections to search for every message (optional)'), sources),
    h('div.row', submit),
    errors);
  fill(root,
    h('h1', 'Chat'),
    h('section.card', { 'aria-labelledby': 'list-title' }, h('h2#list-title', 'Conversations'), list),
    h('section.card', { 'aria-labelledby': 'new-title' }, h('h2#new-title', 'New conversation'), form));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = values(form);
    const separator = v.with.indexOf(':');
    const [kind, id] = [v.with.slice(0, separator), v.with.slice(separator + 1)];
    const picked = [...form.querySelectorAll('input[name="collection"]:checked')].map((input) => input.value);
    const body = {
      title: v.title.trim() || undefined,
      systemPrompt: v.systemPrompt.trim() || undefined,
      // Left out, an agent's own collections apply.
      knowledgeCollections: picked.length ? picked : undefined,
      ...(kind === 'agent' ? { agentId: id } : { model: id }),
    };
    const created = await attempt(errors, () => api(base, { method: 'POST', body }), submit);
    if (created) location.hash = `#/chat/${created.id}`;
  });

  const columns = [
    { title: 'Conversation', cell: (c) => h('a', { href: `#/chat/${c.id}` }, c.title || `Untitled ${c.id.slice(0, 8)}`) },
    { title: 'With', cell: (c) => c.agentId ? [h('a', { href: `#/agents/${c.agentId}` }, 'agent'), ` · ${c.model}`] : c.model },
    { title: 'Messages', cell: (c) => String(c.messageCount) },
    { title: 'Reply', cell: (c) => c.activeReplyId ? badge('generating') : '' },
    { title: 'Updated', cell: (c) => time(c.updatedAt) },
  ];
  const page = (cursor) => api(`${base}${query({ limit: 25, cursor })}`)
    .then((p) => h('div', table(columns, p.items, 'No conversations yet.'), pager(page, p.nextCursor)));

  await Promise.allSettled([
    page().then((node) => fill(list, node), (error) => fill(list, problem(error))),
    Promise.allSettled([api('/api/v1/models'), api(`/api/v1/agents${query({ kind: 'llm', limit: 200, sort: 'name' })}`)])
      .then(([models, agents]) => {
        const groups = [h('option', { value: '' }, 'Choose a model or an agent')];
        if (models.status === 'fulfilled') {
          const chat = models.value.items.filter((m) => m.type === 'chat');
          groups.push(h('optgroup', { label: 'Models' }, chat.map((m) => h('option', { value: `model:${m.id}` }, m.id))));
          const down = models.value.providers.filter((p) => p.status !== 'available');
          fill(choiceNotes, down.map((p) => h('p.muted', `Provider ${p.name} is ${p.status}${p.error ? `: ${p.error}` : ''}.`)));
        } else {
          choiceNotes.append(problem(models.reason));
        }
        if (agents.status === 'fulfilled') {
          groups.push(h('optgroup', { label: 'Agents' },
            agents.value.items.map((a) => h('option', { value: `agent:${a.id}` }, `${a.name}${a.model ? ` (${a.model})` : ''}`))));
        } else {
          choiceNotes.append(problem(agents.reason));
        }
        fill(choice, groups);
      }),
    api(`/api/v1/collections${query({ limit: 200, sort: 'name' })}`).then(
      (p) => fill(sources, p.items.length
        ? p.items.map((c) => h('label.inline', h('input', { type: 'checkbox', name: 'collection', value: c.id }), c.name))
        : h('p.muted', 'The workspace has no knowledge collections.')),
      (error) => fill(sources, problem(error))),
  ]);
  ready('chat');
}

// ---- One conversation ----

async function conversation(root, id) {
  const heading = h('h1', 'Conversation');
  const about = h('p.muted');
  const log = h('div.messages', { role: 'log', 'aria-label': 'Messages', 'aria-busy': 'false' });
  const input = h('textarea#message', { name: 'content', rows: 3, required: true });
  // Send waits for the conversation, so a reply's events never arrive before the messages they follow.
  const sendButton = h('button', { type: 'submit', disabled: true }, 'Send');
  const stopButton = h('button.danger', { type: 'button', disabled: true }, 'Stop');
  const status = h('p.muted.reply-status', { role: 'status' });
  const errors = h('div');
  const composer = h('form.stack.composer', { 'aria-label': 'Send a message' },
    field('Message', input), h('div.row', sendButton, stopButton, h('span.muted', 'Ctrl+Enter sends')), status, errors);
  const titleInput = h('input', { name: 'title', maxlength: 200, placeholder: 'Untitled conversation' });
  const renameButton = h('button.secondary', { type: 'submit' }, 'Rename');
  const renameErrors = h('div');
  const renameForm = h('form.stack', { 'aria-label': 'Rename' },
    field('Title (empty for none)', titleInput), h('div.row', renameButton), renameErrors);
  const deleteButton = h('button.danger', { type: 'button' }, 'Delete conversation');
  const deleteErrors = h('div');
  fill(root, h('p', h('a', { href: '#/chat' }, '← Conversations')), heading, about, log, composer,
    h('section.card', { 'aria-label': 'Rename' }, renameForm),
    h('section.card', { 'aria-label': 'Delete' }, h('p.muted', 'Deleting removes the messages and events for good; a reply being written is stopped.'), deleteButton, deleteErrors));
  function showTitle(title) {
    heading.textContent = title || 'Untitled conversation';
    document.title = `${heading.textContent} · Chat · Agentry`;
    titleInput.value = title ?? '';
  }
  renameForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const renamed = await attempt(renameErrors, () => api(`${base}/${id}`, { method: 'PATCH', body: { title: titleInput.value } }), renameButton);
    if (renamed) {
      showTitle(renamed.title);
      renameErrors.append(notice(renamed.title ? 'Renamed.' : 'Title cleared.'));
    }
  });
  deleteButton.addEventListener('click', async () => {
    if (!confirm('Delete this conversation for good?')) return;
    const gone = await attempt(deleteErrors, () => api(`${base}/${id}`, { method: 'DELETE' }).then(() => true), deleteButton);
    if (gone) location.hash = '#/chat';
  });

  const views = new Map();
  const controller = new AbortController();
  let lastSeq = 0;
  let stream = null;
  const generating = () => [...views.values()].some((v) => v.status === 'generating');

  function setBusy(busy, text) {
    sendButton.disabled = busy;
    stopButton.disabled = !busy;
    log.setAttribute('aria-busy', String(busy));
    if (text !== undefined) status.textContent = text;
  }

  function add(message) {
    const view = messageView(message);
    views.set(message.id, view);
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.querySelector('.empty')?.remove();
    log.append(view.element);
    if (atBottom) log.scrollTop = log.scrollHeight;
    return view;
  }

  // Every event goes through here, from the POST's stream or from …/events: numbered, so none is applied twice.
  function apply({ data: e }) {
    if (!e || typeof e !== 'object' || !(e.seq > lastSeq)) return;
    lastSeq = e.seq;
    const d = e.data;
    if (e.type === 'message') {
      if (!views.has(d.messageId)) add({ id: d.messageId, role: d.role, content: d.content, status: 'complete', createdAt: e.at });
    } else if (e.type === 'reply.started') {
      if (!views.has(d.messageId)) add({ id: d.messageId, role: 'assistant', content: '', status: 'generating', model: d.model, createdAt: e.at });
      setBusy(true, 'Replying…');
    } else if (e.type === 'reply.delta') {
      const view = views.get(d.messageId);
      // Deltas of a reply already shown whole (read from the beginning of the log) are skipped.
      if (view?.status === 'generating') {
        const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
        view.append(d.text);
        if (atBottom) log.scrollTop = log.scrollHeight;
      }
    } else if (finals.has(e.type)) {
      const view = views.get(d.messageId);
      if (view?.status !== 'generating') return;
      view.finish(d, e.at);
      setBusy(false, view.summary());
      // The citations are stored with the reply; the events do not carry them.
      api(`${base}/${id}`).then((c) => {
        const stored = c.messages.find((m) => m.id === d.messageId);
        if (stored) view.details(stored);
      }, (error) => errors.append(problem(error)));
    }
  }

  // Follows the log after `after` (undefined: from its start) until no reply is being generated.
  function resume(after) {
    stream?.close();
    stream = follow(`${base}/${id}/events`, {
      after,
      onEvent: apply,
      isDone: () => !generating(),
      onState: (state) => {
        if (state instanceof Error) {
          errors.append(problem(state));
          setBusy(false);
        } else if (state === 'reconnecting') {
          status.textContent = 'Connection lost; reconnecting…';
        } else if (state === 'offline') {
          status.textContent = 'Offline; the reply resumes when the network is back.';
        } else if (state === 'live' && generating()) {
          status.textContent = 'Replying…';
        } else if (state === 'ended') {
          setBusy(false);
        }
      },
    });
  }

  composer.addEventListener('submit', async (event) => {
    event.preventDefault();
    const content = input.value;
    if (!content.trim() || generating() || sendButton.disabled) return;
    errors.replaceChildren();
    setBusy(true, 'Sending…');
    let dropped = false;
    try {
      const response = await send(`${base}/${id}/messages`, {
        method: 'POST', body: { content }, headers: { Accept: 'text/event-stream' }, signal: controller.signal,
      });
      input.value = '';
      await readEvents(response, apply, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error?.problem) {
        errors.append(problem(error));
        setBusy(false, '');
        return;
      }
      // The network failed: whether or not the message got through, the log says what happened.
      dropped = true;
    }
    if (controller.signal.aborted) return;
    if (dropped || generating()) resume(lastSeq);
    else setBusy(false);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) composer.requestSubmit();
  });
  stopButton.addEventListener('click', async () => {
    status.textContent = 'Stopping…';
    await attempt(errors, () => api(`${base}/${id}/cancel`, { method: 'POST' }), stopButton);
    stopButton.disabled = !generating();
  });

  let detail;
  try {
    detail = await api(`${base}/${id}`);
  } catch (error) {
    fill(root, h('p', h('a', { href: '#/chat' }, '← Conversations')), h('h1', 'Conversation'), problem(error));
    ready('chat');
    return undefined;
  }
  showTitle(detail.title);
  const collections = detail.knowledgeCollections.map((c) => h('a', { href: `#/knowledge/${c}` }, c.slice(0, 8)));
  fill(about, `Model ${detail.model}`,
    detail.agentId && [' · ', h('a', { href: `#/agents/${detail.agentId}` }, 'agent')],
    collections.length > 0 && [' · knowledge: ', collections.flatMap((link, i) => (i ? [', ', link] : [link]))],
    ' · started ', time(detail.createdAt));
  if (collections.length) {
    // Names for the collection links, without holding up the page.
    api(`/api/v1/collections${query({ limit: 200 })}`).then((p) => {
      for (const link of collections) {
        const found = p.items.find((c) => link.getAttribute('href').endsWith(c.id));
        if (found) link.textContent = found.name;
      }
    }, () => {});
  }
  for (const message of detail.messages) add(message);
  if (!detail.messages.length) log.append(h('p.muted.empty', 'No messages yet: send the first.'));
  if (detail.activeReplyId && views.get(detail.activeReplyId)?.status === 'generating') {
    // Its text is in the log so far: read the log from the start (deltas of finished replies are skipped).
    views.get(detail.activeReplyId).reset();
    setBusy(true, 'Replying…');
    resume(undefined);
  } else {
    lastSeq = detail.lastEventSeq;
    sendButton.disabled = false;
  }
  ready('chat');
  input.focus();
  return () => {
    controller.abort();
    stream?.close();
  };
}

/** A message as shown: its text grows with append(); finish() and details() add its status, usage and sources. */
function messageView(m) {
  const text = document.createTextNode(m.content ?? '');
  const state = h('span');
  const usage = h('span.muted.usage');
  const failure = h('div');
  const sources = h('div.sources');
  const element = h(`article.message.${m.role}`, { dataset: { messageId: m.id, role: m.role, status: m.status } },
    h('header.message-head',
      h('strong', m.role === 'user' ? 'You' : m.role === 'assistant' ? 'Assistant' : m.role),
      m.model && h('span.muted', m.model), state, time(m.createdAt)),
    h('div.message-text', text),
    h('footer.message-foot', usage, failure, sources));
  const view = {
    element,
    status: m.status,
    id: m.id,
    finishReason: m.finishReason,
    tokens: { input: m.inputTokens, output: m.outputTokens },
    append(delta) { text.appendData(delta); },
    reset() { text.data = ''; },
    setStatus(value) {
      view.status = value;
      element.dataset.status = value;
      fill(state, m.role === 'assistant' && value !== 'complete' ? badge(value) : null);
    },
    finish(d) {
      view.finishReason = d.finishReason;
      view.tokens = { input: d.inputTokens, output: d.outputTokens };
      showUsage();
      fill(failure, d.error ? h('p.error', d.error) : null);
      view.setStatus(d.status);
    },
    details(stored) {
      if (stored.inputTokens !== null || stored.outputTokens !== null) {
        view.tokens = { input: stored.inputTokens, output: stored.outputTokens };
        showUsage();
      }
      fill(sources, citations(stored.citations ?? []));
    },
    summary() {
      const tokens = usageText();
      if (view.status === 'complete') return `Reply complete${tokens ? ` · ${tokens}` : ''}.`;
      if (view.status === 'cancelled') return `Reply stopped${tokens ? ` · ${tokens}` : ''}.`;
      return 'The reply failed.';
    },
  };
  function usageText() {
    const { input, output } = view.tokens;
    if (input == null && output == null) return '';
    return `${input ?? '?'} prompt + ${output ?? '?'} reply tokens`;
  }
  function showUsage() {
    const finish = view.finishReason && view.finishReason !== 'stop' ? `finished: ${view.finishReason}` : '';
    usage.textContent = [usageText(), finish].filter(Boolean).join(' · ');
  }
  view.setStatus(m.status);
  if (m.role === 'assistant' && m.status !== 'generating') view.details(m);
  if (m.error) failure.append(h('p.error', m.error));
  return view;
}

/** The knowledge chunks a reply's prompt held; those the reply refers to ([n]) are marked cited. */
function citations(list) {
  if (!list.length) return null;
  return h('details.citations', { open: true },
    h('summary', `Sources (${list.length})`),
    h('ol', list.map((c) => h('li', { value: c.index, dataset: { documentId: c.documentId } },
      h('a', { href: `#/knowledge/${c.collectionId}` }, c.documentName),
      c.headingPath && h('span.muted', ` · ${c.headingPath}`),
      c.page != null && h('span.muted', ` · page ${c.page}`),
      h('span.muted', ` · chunk ${c.position} · score ${formatScore(c.score)}`),
      c.cited && [' ', badge('cited')]))));
}

const formatScore = (score) => (typeof score === 'number' ? Number(score.toPrecision(3)).toString() : String(score));
