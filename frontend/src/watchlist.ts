/** The watchlist's numbers: change since the session open, the day's sparkline, the latest
 * signal per symbol and the sort. Pure functions (watchlist.test.ts). */

import type { ApiCandle, Signal } from "./types";

export interface WatchRow {
  symbol: string;
  last: number | null;
  open: number | null; // the session's first price: the open of its 1d candle
  change: number | null; // percent since the open
  spark: number[]; // the day's closes, oldest first, the last one live
  signal: Signal | null; // the newest signal of the symbol
}

export type SortKey = "symbol" | "last" | "change" | "signal";

export function change(open: number | null, last: number | null): number | null {
  return open === null || last === null || open === 0 ? null : ((last - open) / open) * 100;
}

/** The closes of ``candles`` (ascending) from the session that starts at ``dayStart`` (epoch
 * seconds), with ``last`` as the newest price when it is newer than the last candle. */
export function sparkline(candles: ApiCandle[], dayStart: number | null, last: number | null): number[] {
  const closes = candles.filter((c) => dayStart === null || c.t >= dayStart).map((c) => c.c);
  if (last !== null && closes.length > 0) closes[closes.length - 1] = last;
  return closes;
}

/** An SVG path of ``values`` over a ``width`` × ``height`` box (empty for fewer than two). */
export function sparkPath(values: number[], width: number, height: number): string {
  if (values.length < 2) return "";
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  return values
    .map((v, i) => {
      const x = (i / (values.length - 1)) * width;
      const y = height - ((v - lo) / span) * height;
      return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** The newest signal of each symbol (``signals``: newest first, as mergeSignals keeps them). */
export function latestBySymbol(signals: Signal[]): Map<string, Signal> {
  const out = new Map<string, Signal>();
  for (const s of signals) if (!out.has(s.symbol)) out.set(s.symbol, s);
  return out;
}

/** Rows sorted by ``key`` (``descending``); rows without the value go last either way. */
export function sortRows(rows: WatchRow[], key: SortKey, descending: boolean): WatchRow[] {
  const value = (r: WatchRow): number | string | null =>
    key === "symbol" ? r.symbol : key === "last" ? r.last : key === "change" ? r.change : r.signal ? r.signal.start : null;
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x === null || y === null) return x === y ? a.symbol.localeCompare(b.symbol) : x === null ? 1 : -1;
    const order = x < y ? -1 : x > y ? 1 : a.symbol.localeCompare(b.symbol);
    return descending ? -order : order;
  });
}

/** The interval the sparkline is drawn from: 15m if configured, else the longest intraday one. */
export function sparkInterval(intervals: string[]): string | null {
  if (intervals.includes("15m")) return "15m";
  const intraday = intervals.filter((i) => i !== "1d");
  return intraday.length ? intraday[intraday.length - 1] : null;
}
