// The management API: every call with the tab's admin key; an error answer
// becomes an ApiError carrying the API's code and message.
import { config } from './config.js';
import { adminKey, signOut } from './session.js';

export class ApiError extends Error {
  /** `field`: the request field at fault, when the API names one. */
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** `?a=1&b=2` of the defined, non-empty values of `query`. */
export function queryString(query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function api(method, path, body, { key = adminKey(), quiet401 = false } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(config.apiUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `hookrun did not answer (${e.message}); is it running?`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = new ApiError(
      resp.status,
      json?.error?.code ?? 'error',
      json?.error?.message ?? `hookrun answered ${resp.status}`,
      json?.error?.field ?? null,
    );
    // Only the key in use now is forgotten: an answer to a request made
    // with an older key (one that was just replaced) changes nothing.
    if (resp.status === 401 && !quiet401 && key === adminKey()) signOut('Your key was not accepted (it may have been revoked): sign in again.');
    throw err;
  }
  return json;
}

export const get = (path, query) => api('GET', path + queryString(query));

/**
 * Every record of a listing (pages of 100, at most `max` records): for the
 * choices of a form, where a record past the first page must be there too.
 */
export async function all(path, query = {}, max = 1000) {
  const data = [];
  let cursor;
  do {
    const page = await get(path, { ...query, limit: 100, cursor });
    data.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && data.length < max);
  return { data };
}
export const post = (path, body = {}) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);
