/** The API token, when the worker requires one (STOCKAPP_API_TOKEN): kept for this browser tab
 * only (sessionStorage), sent as a bearer header, and traded for a short-lived ticket to open
 * the live WebSocket, which cannot carry a header. */

const KEY = "stockapp.token";

type Storage = Pick<globalThis.Storage, "getItem" | "setItem" | "removeItem">;

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled: the token lasts until the page reloads
  }
}

let memory: string | null = null;

export function getToken(store: Storage | null = storage()): string | null {
  return store ? store.getItem(KEY) : memory;
}

export function setToken(token: string | null, store: Storage | null = storage()): void {
  const value = token?.trim() || null;
  if (!store) memory = value;
  else if (value) store.setItem(KEY, value);
  else store.removeItem(KEY);
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
