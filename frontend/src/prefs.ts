/** User choices remembered across reloads (localStorage). */

import type { Interval } from "./types";

export const TOGGLES = ["volume", "sma20", "sma50", "ema12", "ema26", "bb", "vwap", "rsi", "macd"] as const;
export type Toggle = (typeof TOGGLES)[number];

export const TOGGLE_LABELS: Record<Toggle, string> = {
  volume: "Volume",
  sma20: "SMA 20",
  sma50: "SMA 50",
  ema12: "EMA 12",
  ema26: "EMA 26",
  bb: "Bollinger",
  vwap: "VWAP",
  rsi: "RSI 14",
  macd: "MACD",
};

export interface Prefs {
  symbol: string | null;
  interval: Interval;
  theme: "dark" | "light";
  shown: Record<Toggle, boolean>;
}

const KEY = "stockapp.prefs.v1";

export const DEFAULT_PREFS: Prefs = {
  symbol: null,
  interval: "1m",
  theme: "dark",
  shown: { volume: true, sma20: true, sma50: false, ema12: false, ema26: false, bb: true, vwap: false, rsi: true, macd: false },
};

export function loadPrefs(storage: Pick<Storage, "getItem"> = localStorage): Prefs {
  try {
    const saved = JSON.parse(storage.getItem(KEY) ?? "{}") as Partial<Prefs>;
    return { ...DEFAULT_PREFS, ...saved, shown: { ...DEFAULT_PREFS.shown, ...(saved.shown ?? {}) } };
  } catch {
    return DEFAULT_PREFS;
  }
}

export function savePrefs(prefs: Prefs, storage: Pick<Storage, "setItem"> = localStorage): void {
  storage.setItem(KEY, JSON.stringify(prefs));
}
