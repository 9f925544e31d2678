/** The API client: same origin (the worker serves the UI), or the dev server's proxy. */

import { authHeaders, liveUrl, writeHeaders } from "./auth";
import { isSignal, parseLiveMessage } from "./live";
import type { ApiCandle, LiveMessage, Meta, Rule, Signal, SymbolInfo } from "./types";

export class ApiError extends Error {}

/** The worker wants a token (none given, or a wrong one). */
export class AuthError extends ApiError {}

async function getJson<T>(path: string, signal?: AbortSignal, init: RequestInit = {}): Promise<T> {
  const headers = { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  const response = await fetch(path, { ...init, signal, headers });
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

/** Pages the symbol list asks for at most (1,000 symbols each): the search box and the
 * watchlist need no more, and a worker holding more must not be read whole by every page. */
export const SYMBOL_PAGES = 20;

export async function fetchSymbols(signal?: AbortSignal): Promise<SymbolInfo[]> {
  const symbols: SymbolInfo[] = [];
  let after: string | null = null;
  for (let page = 0; page < SYMBOL_PAGES; page++) {
    const query: string = after === null ? "" : `?after=${encodeURIComponent(after)}`;
    type Page = { symbols: SymbolInfo[]; next: string | null };
    const body: Page = await getJson<Page>(`/api/symbols${query}`, signal);
    symbols.push(...body.symbols);
    after = body.next ?? null;
    if (after === null) break;
  }
  return symbols;
}

/** The latest ``limit`` candles (500 by default) starting in [start, end): epoch seconds, both
 * optional (no end: up to the forming candle). */
export async function fetchCandles(
  symbol: string,
  interval: string,
  options: { start?: number; end?: number; limit?: number } = {},
  signal?: AbortSignal,
): Promise<ApiCandle[]> {
  const query = new URLSearchParams({ interval, limit: String(options.limit ?? 500) });
  if (options.start !== undefined) query.set("start", String(options.start));
  if (options.end !== undefined) query.set("end", String(options.end));
  const path = `/api/candles/${encodeURIComponent(symbol)}?${query}`;
  return (await getJson<{ candles: ApiCandle[] }>(path, signal)).candles;
}

/** The most the API gives in one page (openapi.json: limit's maximum). */
export const MAX_PAGE = 5000;

/** Every candle starting in [start, end) (no end: up to the forming candle), ascending: pages
 * of MAX_PAGE back from the end until the start is reached, at most ``pages`` of them (then the
 * latest ones). The comparison's span: the chart's, whatever its symbol's candles count. */
export async function fetchCandleSpan(
  symbol: string,
  interval: string,
  start: number,
  end: number | undefined,
  signal?: AbortSignal,
  pages = 10,
): Promise<ApiCandle[]> {
  let out: ApiCandle[] = [];
  let until = end;
  for (let page = 0; page < pages; page++) {
    const list = await fetchCandles(symbol, interval, { start, end: until, limit: MAX_PAGE }, signal);
    out = [...list, ...out]; // end is exclusive: the pages do not overlap
    if (list.length < MAX_PAGE || list[0].t <= start) break;
    until = list[0].t;
  }
  return out;
}

export async function fetchSignals(
  filter: { symbol?: string; interval?: string; limit?: number } = {},
  signal?: AbortSignal,
): Promise<Signal[]> {
  const query = new URLSearchParams({ limit: String(filter.limit ?? 100) });
  if (filter.symbol) query.set("symbol", filter.symbol);
  if (filter.interval) query.set("interval", filter.interval);
  // Only what the page can draw (src/live.ts).
  return (await getJson<{ signals: unknown[] }>(`/api/signals?${query}`, signal)).signals.filter(isSignal);
}

export async function fetchRules(signal?: AbortSignal): Promise<Rule[]> {
  return (await getJson<{ rules: Rule[] }>("/api/rules", signal)).rules;
}

/** Creates a rule (with the admin token, src/auth.ts); an invalid one throws ApiError with the
 * server's message (which names the field), a refused token AuthError with the server's. */
export async function createRule(rule: unknown): Promise<Rule> {
  return getJson<Rule>("/api/rules", undefined, {
    method: "POST",
    body: JSON.stringify(rule),
    headers: { ...writeHeaders(), "Content-Type": "application/json" },
  });
}

export async function deleteRule(name: string): Promise<void> {
  await getJson(`/api/rules/${encodeURIComponent(name)}`, undefined, { method: "DELETE", headers: writeHeaders() });
}

/** A WebSocket under /api that reconnects after a drop and then calls ``onReconnect``: what
 * happened while it was down was not pushed, so the caller reloads. Returns a function that
 * stops it. */
function openSocket(path: string, onMessage: (message: LiveMessage) => void, onReconnect?: () => void): () => void {
  let socket: WebSocket | null = null;
  let stopped = false;
  let dropped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const connect = async () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const base = `${scheme}://${location.host}${path}`;
    const url = await liveUrl(base).catch(() => base);
    if (stopped) return;
    socket = new WebSocket(url);
    socket.onopen = () => {
      if (dropped) onReconnect?.();
      dropped = false;
    };
    socket.onmessage = (event) => {
      // A message the page cannot draw is dropped here, not thrown at React (src/live.ts).
      const message = parseLiveMessage(event.data);
      if (message) onMessage(message);
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

/** Live candle updates of one chart, and the signals that fire on its candles. */
export function subscribeLive(
  symbol: string,
  interval: string,
  onCandle: (candle: ApiCandle) => void,
  onReconnect?: () => void,
  onSignal?: (signal: Signal) => void,
): () => void {
  const path = `/api/live/${encodeURIComponent(symbol)}?interval=${interval}`;
  return openSocket(
    path,
    (message) => {
      if (message.type === "candle") onCandle(message.candle);
      else if (message.type === "signal") onSignal?.(message.signal);
    },
    onReconnect,
  );
}

/** Every signal of every symbol as it fires. */
export function subscribeSignals(onSignal: (signal: Signal) => void, onReconnect?: () => void): () => void {
  return openSocket("/api/signals/live", (message) => message.type === "signal" && onSignal(message.signal), onReconnect);
}
