// Server-Sent Events over fetch (EventSource cannot send the workspace or CSRF headers, nor POST): the same streams a
// script reads. A dropped connection is resumed with Last-Event-ID = the last id seen, so no event is lost or repeated.
import { headers, refresh, ApiError } from './api.js';

/** Parses an SSE body, calling onEvent({ id, event, data }) per event; resolves when the body ends. */
export async function readEvents(response, onEvent, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let current = { data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(buffer[newline] === '\r' ? newline + 2 : newline + 1);
        if (line === '') {
          if (current.data.length) {
            const text = current.data.join('\n');
            let data = text;
            try { data = JSON.parse(text); } catch { /* plain text */ }
            onEvent({ id: current.id, event: current.event || 'message', data });
          }
          current = { data: [] };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const content = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') current.data.push(content);
          else if (field === 'id') current.id = content;
          else if (field === 'event') current.event = content;
        }
      }
    }
  } finally {
    if (signal?.aborted) reader.cancel().catch(() => {});
  }
}

/**
 * Follows a GET event stream: onEvent per event, onState('live' | 'reconnecting' | 'offline' | 'ended' | ApiError) as
 * the connection changes. Reconnects after a drop (1 s, doubling up to 10 s) until isDone() says the stream is final
 * or close() is called. A browser that knows it is offline may leave an open stream silently stuck, so the request is
 * dropped at once ('offline') and resumed when the network is back. Resuming is always after the last event id seen.
 * Returns { close }.
 */
export function follow(path, { onEvent, onState = () => {}, isDone = () => false, after } = {}) {
  const controller = new AbortController();
  let connection = null;
  let back = null;
  let lastId = after;
  let delay = 1000;
  const offline = () => { connection?.abort(); onState('offline'); };
  const online = () => back?.();
  window.addEventListener('offline', offline);
  window.addEventListener('online', online);
  const whenOnline = () => (navigator.onLine ? Promise.resolve() : new Promise((resolve) => { back = resolve; }));
  (async () => {
    while (!controller.signal.aborted) {
      await whenOnline();
      if (controller.signal.aborted) return;
      connection = new AbortController();
      const signal = AbortSignal.any([controller.signal, connection.signal]);
      try {
        const extra = { Accept: 'text/event-stream' };
        if (lastId !== undefined && lastId !== null) extra['Last-Event-ID'] = String(lastId);
        let response = await fetch(path, { headers: headers('GET', extra), signal, credentials: 'same-origin' });
        if (response.status === 401 && await refresh()) {
          response = await fetch(path, { headers: headers('GET', extra), signal, credentials: 'same-origin' });
        }
        if (!response.ok) {
          const error = await ApiError.from(response);
          onState(error);
          if (response.status < 500 && response.status !== 429) return;
        } else {
          onState('live');
          delay = 1000;
          await readEvents(response, (event) => {
            if (event.id !== undefined) lastId = event.id;
            onEvent(event);
          }, signal);
          if (isDone()) { onState('ended'); return; }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (isDone()) { onState('ended'); return; }
      }
      if (controller.signal.aborted) return;
      // Offline: already reported; the loop waits for the network instead of a timer.
      if (!navigator.onLine) continue;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })().finally(() => {
    window.removeEventListener('offline', offline);
    window.removeEventListener('online', online);
  });
  return {
    close: () => { controller.abort(); back?.(); },
    get lastId() { return lastId; },
  };
}
