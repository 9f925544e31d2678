/** The API's shapes (stockapp/web/openapi.json). Which intervals and indicators exist is the
 * server's to say (GET /api/meta), not this file's. */

/** A candle's trading session (docs/streaming.md#sessions): its start's for an intraday candle,
 * what its day counts for a 1d one ("regular" or "extended"); always "regular" on the
 * always-open calendar. */
export type Session = "pre" | "regular" | "post" | "extended" | "closed";

export interface ApiCandle {
  t: number; // start, epoch seconds (UTC)
  session?: Session; // absent from an older server
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  closed: boolean;
  indicators: Record<string, number | null>; // keys: the outputs listed by /api/meta
}

export interface SymbolInfo {
  symbol: string;
  last_price: number | null;
  last_time: number | null;
}

export type LiveMessage =
  | { type: "candle"; symbol: string; interval: string; candle: ApiCandle; sent_at: number }
  | { type: "signal"; signal: Signal; sent_at?: number };

/** A rule's firing on one candle (docs/signals.md). */
export interface Signal {
  key: string; // symbol|interval|rule|start (|provisional)
  symbol: string;
  interval: string;
  rule: string;
  kind: string;
  start: number; // the candle's start, epoch ms
  end: number;
  values: Record<string, number | null>;
  provisional: boolean;
}

/** A signal rule as the API gives it: its JSON form and whether it is built in. */
export interface Rule {
  name: string;
  kind: string;
  interval: string;
  symbols: "*" | string[];
  provisional: boolean;
  builtin: boolean;
  [field: string]: unknown; // the kind's fields: left/right, series/level, lookback
}

export interface IndicatorInfo {
  key: string; // kind and parameters, e.g. "sma_20", "macd_12_26_9"
  kind: string; // sma, ema, rsi, macd, bb, vwap
  params: number[];
  label: string;
  pane: string; // "price": over the candles; otherwise a pane of its own
  outputs: string[];
}

export interface Meta {
  intervals: string[];
  indicators: IndicatorInfo[];
  /** The trading calendar candles are cut from (STOCKAPP_EXCHANGE), its time zone, what counts. */
  exchange?: string;
  always_open?: boolean;
  timezone?: string;
  session_hours?: "regular" | "extended";
  session_now?: "pre" | "regular" | "post" | "closed";
  /** Today's trading day (the exchange's date) if it is one, and the next: [start, end) in epoch seconds. */
  sessions?: TradingDay[];
}

export interface TradingDay {
  date: string; // YYYY-MM-DD, the exchange's
  pre: [number, number] | null;
  regular: [number, number][];
  post: [number, number] | null;
}
