// The admin API, called with the session cookie (sent by the browser) and the CSRF token on every change.

let csrf = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

export function onSignedOut(listener) {
  listeners.add(listener);
}

export async function session() {
  const answer = await call("GET", "/admin/session");
  csrf = answer.signed_in ? answer.csrf_token : null;
  return answer;
}

export async function signIn(secret) {
  const answer = await call("POST", "/admin/session", { secret });
  csrf = answer.csrf_token;
  return answer;
}

export async function signOut() {
  await call("DELETE", "/admin/session");
  csrf = null;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if ((response.status === 401 || response.status === 403) && !path.startsWith("/admin/session")) {
      csrf = null;
      listeners.forEach((listener) => listener());
    }
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`, error.field || error.param);
  }
  return data;
}

export const get = (path, params = {}) => call("GET", path + query(params));
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => call("PATCH", path, body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);
