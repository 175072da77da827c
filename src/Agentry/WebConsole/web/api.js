// The console's only way to the server: Agentry's public API with the session cookie (set by /connect/token for the
// agentry-console client; script never sees a token), the double-submit CSRF header on every unsafe call, and the
// workspace chosen in the header bar. A 401 refreshes the session once (the refresh token is a cookie too) and retries.

const CLIENT = 'agentry-console';
let workspace = sessionStorage.getItem('agentry.workspace') || '';

export const setWorkspace = (id) => { workspace = id || ''; sessionStorage.setItem('agentry.workspace', workspace); };
export const currentWorkspace = () => workspace;

function csrf() {
  const cookie = document.cookie.split('; ').find((c) => c.startsWith('agentry_csrf='));
  return cookie ? decodeURIComponent(cookie.slice('agentry_csrf='.length)) : '';
}

/** An API answer that was not a success: the problem details as the server wrote them. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || problem.error_description || problem.error || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  static async from(response) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = { title: `${response.status} ${response.statusText}`.trim() };
    }
    if (!problem.title && problem.error) {
      // An OAuth error (RFC 6749 §5.2) from /connect.
      problem = { title: problem.error_description || problem.error, code: problem.error, status: response.status };
    }
    return new ApiError(response.status, problem);
  }
}

/** Headers every API call sends. */
export function headers(method = 'GET', extra = {}) {
  const result = { Accept: 'application/json', ...extra };
  if (workspace) result['Agentry-Workspace'] = workspace;
  if (method !== 'GET' && method !== 'HEAD') result['X-Agentry-Csrf'] = csrf();
  return result;
}

let refreshing = null;

/** Renews the session from the refresh cookie; one request however many calls wait for it. */
export function refresh() {
  // No CSRF cookie, no session to renew (it is set with the refresh cookie and cleared with it).
  if (!csrf()) return Promise.resolve(false);
  refreshing ??= fetch('/connect/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Agentry-Console': '1', 'X-Agentry-Csrf': csrf() },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT }),
    credentials: 'same-origin',
  }).then((r) => r.ok, () => false).finally(() => { setTimeout(() => { refreshing = null; }, 0); });
  return refreshing;
}

/** Sends a request (JSON body unless FormData), refreshing the session once on a 401; throws ApiError on failure. */
export async function send(path, { method = 'GET', body, headers: extra = {}, signal } = {}) {
  const init = () => {
    const h = headers(method, extra);
    let payload = body;
    if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
      h['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    return { method, headers: h, body: payload, signal, credentials: 'same-origin' };
  };
  let response = await fetch(path, init());
  if (response.status === 401 && !path.startsWith('/connect') && await refresh()) {
    response = await fetch(path, init());
  }
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent('agentry:signed-out'));
  }
  if (!response.ok) throw await ApiError.from(response);
  return response;
}

/** A JSON call: the parsed body, or null for 204. */
export async function api(path, options) {
  const response = await send(path, options);
  return response.status === 204 || response.headers.get('Content-Length') === '0' ? null : response.json();
}

export async function signIn(email, password) {
  const response = await fetch('/connect/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Agentry-Console': '1' },
    body: new URLSearchParams({ grant_type: 'password', client_id: CLIENT, username: email, password, scope: 'offline_access email profile' }),
    credentials: 'same-origin',
  });
  if (!response.ok) throw await ApiError.from(response);
}

/** Revokes the session's refresh token (and with it its access tokens) and drops the cookies. */
export async function signOut() {
  await fetch('/connect/revoke', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Agentry-Console': '1', 'X-Agentry-Csrf': csrf() },
    body: new URLSearchParams({ client_id: CLIENT }),
    credentials: 'same-origin',
  });
}

/** A query string from the non-empty values of an object. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
