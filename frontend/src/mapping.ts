/** Pure mapping from API candles to chart series data: tested with vitest, no DOM needed. */

import type { ApiCandle, IndicatorInfo } from "./types";
import type { Shown } from "./prefs";

export interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

export interface Point {
  time: number;
  value: number;
}

export interface VolumePoint extends Point {
  color: string;
}

export const UP = "#26a69a";
export const DOWN = "#ef5350";

// Times are the API's: UTC epoch seconds (a candle's start); the chart's labels are formatted
// in the chosen zone (timezones.ts), the data is not shifted.
export function toBar(c: ApiCandle): Bar {
  return { time: c.t, open: c.o, high: c.h, low: c.l, close: c.c };
}

export function toVolume(c: ApiCandle): VolumePoint {
  return { time: c.t, value: c.v, color: c.c >= c.o ? `${UP}80` : `${DOWN}80` };
}

/** An indicator's point, or null during warm-up (the series then has a gap, not a zero). */
export function toPoint(c: ApiCandle, name: string): Point | null {
  const value = c.indicators[name];
  return value === null || value === undefined || !Number.isFinite(value)
    ? null
    : { time: c.t, value };
}

/** One series of an indicator output: where it goes and how it is drawn. */
export interface SeriesSpec {
  output: string;
  key: string; // the indicator's key (its toggle)
  kind: string;
  pane: number; // 0: the price pane
  color: string;
  histogram: boolean; // MACD's histogram; every other output is a line
}

const PALETTE: Record<string, string[]> = {
  sma: ["#f7c948", "#ff9800", "#ffd54f", "#ffb74d"],
  ema: ["#42a5f5", "#ab47bc", "#4fc3f7", "#ce93d8"],
  bb: ["#80cbc4", "#4db6ac", "#80cbc4"],
  vwap: ["#e91e63"],
  rsi: ["#7e57c2", "#9575cd"],
  macd: ["#2962ff", "#ff6d00"],
};

/**
 * The chart's series for the shown indicators, from the server's list: overlays on the price
 * pane, and one pane below it per shown indicator that has a pane of its own.
 */
export function chartLayout(indicators: IndicatorInfo[], shown: Shown): { series: SeriesSpec[]; panes: number } {
  const series: SeriesSpec[] = [];
  const used: Record<string, number> = {};
  let panes = 1;
  for (const indicator of indicators) {
    if (!shown[indicator.key]) continue;
    const pane = indicator.pane === "price" ? 0 : panes++;
    const colors = PALETTE[indicator.kind] ?? ["#9e9e9e"];
    indicator.outputs.forEach((output, i) => {
      const histogram = indicator.kind === "macd" && i === 2;
      const color = histogram ? UP : colors[(used[indicator.kind] ?? 0) % colors.length];
      if (!histogram) used[indicator.kind] = (used[indicator.kind] ?? 0) + 1;
      series.push({ output, key: indicator.key, kind: indicator.kind, pane, color, histogram });
    });
  }
  return { series, panes };
}

/**
 * Merge candles into an ascending list without duplicates: a newer copy of a candle (same
 * start) replaces the older one. Used for live updates and for older pages loaded on scroll.
 */
export function mergeCandles(current: ApiCandle[], incoming: ApiCandle[]): ApiCandle[] {
  if (incoming.length === 0) return current;
  const last = current.length ? current[current.length - 1].t : -Infinity;
  // The common live case: the forming candle changed, or a new one started.
  if (incoming.length === 1 && incoming[0].t >= last) {
    const c = incoming[0];
    return c.t === last ? [...current.slice(0, -1), c] : [...current, c];
  }
  const byStart = new Map<number, ApiCandle>();
  for (const c of current) byStart.set(c.t, c);
  for (const c of incoming) byStart.set(c.t, c);
  return [...byStart.values()].sort((a, b) => a.t - b.t);
}

export interface ChartUpdate {
  candle: ApiCandle;
  /** Older than the last candle the chart has: lightweight-charts' historical update. */
  historical: boolean;
}

/**
 * How the chart takes `next` after `old`: the candles to redraw in place, or null when only a
 * full reset will do (history prepended, a candle between two the chart has). During a grace
 * period the candle before the last is still forming and changes with it; once it closes its
 * final values replace the provisional ones. Unchanged candles (the same objects, as
 * mergeCandles keeps them) are not redrawn.
 */
export function chartUpdates(old: ApiCandle[], next: ApiCandle[]): ChartUpdate[] | null {
  if (old.length === 0 || next.length < old.length || next.length - old.length > 1) return null;
  const lastOld = old.length - 1;
  if (next[0].t !== old[0].t || next[lastOld].t !== old[lastOld].t) return null;
  const last = old[lastOld].t;
  const updates: ChartUpdate[] = [];
  for (let i = 0; i < next.length; i++) {
    if (i < old.length && next[i] === old[i]) continue;
    updates.push({ candle: next[i], historical: next[i].t < last });
  }
  return updates;
}

/** Values for the crosshair legend, formatted; "–" where there is no value. */
export function formatValue(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatVolume(value: number): string {
  if (value >= 1e9) return `${(value / 1e9).toFixed(2)}B`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}K`;
  return String(Math.round(value));
}
