/** The API's shapes (stockapp/web/openapi.json). Which intervals and indicators exist is the
 * server's to say (GET /api/meta), not this file's. */

export interface ApiCandle {
  t: number; // start, epoch seconds (UTC)
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

export interface LiveMessage {
  type: "candle";
  symbol: string;
  interval: string;
  candle: ApiCandle;
  sent_at: number;
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
}
