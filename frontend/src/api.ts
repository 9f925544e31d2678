/** The API client: same origin (the worker serves the UI), or the dev server's proxy. */

import { authHeaders, liveUrl } from "./auth";
import type { ApiCandle, LiveMessage, Meta, SymbolInfo } from "./types";

export class ApiError extends Error {}

/** The worker wants a token (none given, or a wrong one). */
export class AuthError extends ApiError {}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { signal, headers: authHeaders() });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) throw new AuthError(body?.error ?? "a token is required");
  if (!response.ok) {
    throw new ApiError(body?.error ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

export async function fetchMeta(signal?: AbortSignal): Promise<Meta> {
  return getJson<Meta>("/api/meta", signal);
}

export async function fetchSymbols(signal?: AbortSignal): Promise<SymbolInfo[]> {
  return (await getJson<{ symbols: SymbolInfo[] }>("/api/symbols", signal)).symbols;
}

export async function fetchCandles(
  symbol: string,
  interval: string,
  options: { end?: number; limit?: number } = {},
  signal?: AbortSignal,
): Promise<ApiCandle[]> {
  const query = new URLSearchParams({ interval, limit: String(options.limit ?? 500) });
  if (options.end !== undefined) query.set("end", String(options.end));
  const path = `/api/candles/${encodeURIComponent(symbol)}?${query}`;
  return (await getJson<{ candles: ApiCandle[] }>(path, signal)).candles;
}

/** Live candle updates; reconnects after a drop, and then calls ``onReconnect``: what changed
 * while the socket was down was not pushed, so the caller reloads the recent history. Returns
 * a function that stops it. */
export function subscribeLive(
  symbol: string,
  interval: string,
  onCandle: (candle: ApiCandle) => void,
  onReconnect?: () => void,
): () => void {
  let socket: WebSocket | null = null;
  let stopped = false;
  let dropped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const connect = async () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const base = `${scheme}://${location.host}/api/live/${encodeURIComponent(symbol)}?interval=${interval}`;
    const url = await liveUrl(base).catch(() => base);
    if (stopped) return;
    socket = new WebSocket(url);
    socket.onopen = () => {
      if (dropped) onReconnect?.();
      dropped = false;
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as LiveMessage;
      if (message.type === "candle") onCandle(message.candle);
    };
    socket.onclose = () => {
      dropped = true;
      if (!stopped) retry = setTimeout(connect, 2000);
    };
  };
  void connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    socket?.close();
  };
}
