/** The API token, when the worker requires one (STOCKAPP_API_TOKEN): kept for this browser tab
 * only (sessionStorage), sent as a bearer header, and traded for a short-lived ticket to open
 * the live WebSocket, which cannot carry a header. The admin token (STOCKAPP_ADMIN_TOKEN),
 * which writing rules needs, is kept the same way and sent only with writes. */

const KEY = "stockapp.token";
const ADMIN_KEY = "stockapp.adminToken";

type Storage = Pick<globalThis.Storage, "getItem" | "setItem" | "removeItem">;

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled: the token lasts until the page reloads
  }
}

const memory: Record<string, string | null> = {};

function read(key: string, store: Storage | null): string | null {
  return store ? store.getItem(key) : (memory[key] ?? null);
}

function write(key: string, token: string | null, store: Storage | null): void {
  const value = token?.trim() || null;
  if (!store) memory[key] = value;
  else if (value) store.setItem(key, value);
  else store.removeItem(key);
}

export function getToken(store: Storage | null = storage()): string | null {
  return read(KEY, store);
}

export function setToken(token: string | null, store: Storage | null = storage()): void {
  write(KEY, token, store);
}

export function getAdminToken(store: Storage | null = storage()): string | null {
  return read(ADMIN_KEY, store);
}

export function setAdminToken(token: string | null, store: Storage | null = storage()): void {
  write(ADMIN_KEY, token, store);
}

/** The header of a write: the admin token when one was given (it reads too), else the API
 * token, whose refusal names the setting the server wants. */
export function writeHeaders(store: Storage | null = storage()): Record<string, string> {
  return authHeaders(getAdminToken(store) ?? getToken(store));
}

export function authHeaders(token: string | null = getToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The live WebSocket's URL, with a fresh ticket when a token is set. */
export async function liveUrl(base: string, fetcher: typeof fetch = fetch): Promise<string> {
  const token = getToken();
  if (!token) return base;
  const response = await fetcher("/api/ws-ticket", { method: "POST", headers: authHeaders(token) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body?.ticket) return base; // the socket's 401 ends in a reconnect
  return `${base}${base.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(body.ticket)}`;
}
