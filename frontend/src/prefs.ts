/** User choices remembered across reloads (localStorage). */

import { isScaleChoice, type ScaleChoice } from "./scale";
import { isZoneChoice, type ZoneChoice } from "./timezones";
import type { IndicatorInfo } from "./types";

/** What can be shown: volume, and each indicator the server computes (by its key). */
export type Shown = Record<string, boolean>;

export interface Prefs {
  symbol: string | null;
  interval: string;
  theme: "dark" | "light";
  shown: Shown;
  /** Pre-market and after-hours candles shown (shaded), or left out. */
  extended: boolean;
  /** The time zone times are shown in: the exchange's, the browser's or UTC. */
  timezone: ZoneChoice;
  /** The price scale; percentage anyway while another symbol is compared. */
  scale: ScaleChoice;
}

const KEY = "stockapp.prefs.v1";

/** Shown at first: volume, the first SMA, the Bollinger bands and the first RSI. */
export function defaultShown(indicators: IndicatorInfo[]): Shown {
  const shown: Shown = { volume: true };
  for (const kind of ["sma", "bb", "rsi"]) {
    const first = indicators.find((i) => i.kind === kind);
    if (first) shown[first.key] = true;
  }
  return shown;
}

export const DEFAULT_PREFS: Prefs = {
  symbol: null,
  interval: "1m",
  theme: "dark",
  shown: { volume: true },
  extended: true,
  timezone: "exchange",
  scale: "normal",
};

export function loadPrefs(storage: Pick<Storage, "getItem"> = localStorage): Prefs {
  try {
    const saved = JSON.parse(storage.getItem(KEY) ?? "{}") as Partial<Prefs>;
    return {
      ...DEFAULT_PREFS,
      ...saved,
      shown: { ...DEFAULT_PREFS.shown, ...(saved.shown ?? {}) },
      // Saved by an older page, or edited by hand: what is not a choice falls back.
      extended: typeof saved.extended === "boolean" ? saved.extended : DEFAULT_PREFS.extended,
      timezone: isZoneChoice(saved.timezone) ? saved.timezone : DEFAULT_PREFS.timezone,
      scale: isScaleChoice(saved.scale) ? saved.scale : DEFAULT_PREFS.scale,
    };
  } catch {
    return DEFAULT_PREFS;
  }
}

/** Fill in what the server offers and the saved prefs do not mention (first visit, or an
 * indicator added since), and fall back to the first interval if the saved one is gone. */
export function withMeta(prefs: Prefs, intervals: string[], indicators: IndicatorInfo[]): Prefs {
  const defaults = defaultShown(indicators);
  const shown: Shown = { volume: prefs.shown.volume ?? true };
  for (const i of indicators) shown[i.key] = prefs.shown[i.key] ?? defaults[i.key] ?? false;
  const interval = intervals.includes(prefs.interval) ? prefs.interval : (intervals[0] ?? prefs.interval);
  return { ...prefs, interval, shown };
}

export function savePrefs(prefs: Prefs, storage: Pick<Storage, "setItem"> = localStorage): void {
  storage.setItem(KEY, JSON.stringify(prefs));
}
