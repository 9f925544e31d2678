/** The API's shapes (stockapp/web/openapi.json). */

export const INDICATOR_NAMES = [
  "sma_20",
  "sma_50",
  "ema_12",
  "ema_26",
  "rsi_14",
  "macd",
  "macd_signal",
  "macd_hist",
  "bb_upper",
  "bb_middle",
  "bb_lower",
  "vwap",
] as const;

export type IndicatorName = (typeof INDICATOR_NAMES)[number];

export interface ApiCandle {
  t: number; // start, epoch seconds (UTC)
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  closed: boolean;
  indicators: Record<IndicatorName, number | null>;
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

export const INTERVALS = ["1m", "5m", "15m", "1h", "1d"] as const;
export type Interval = (typeof INTERVALS)[number];
