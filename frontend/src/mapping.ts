/** Pure mapping from API candles to chart series data: tested with vitest, no DOM needed. */

import type { ApiCandle, IndicatorName } from "./types";

/**
 * lightweight-charts draws times as UTC. To show the user's local time, each timestamp is
 * shifted by the local UTC offset at that instant (so DST changes are honoured).
 */
export function toLocalTime(utcSeconds: number, offsetMinutes?: (ms: number) => number): number {
  const offset = (offsetMinutes ?? ((ms) => -new Date(ms).getTimezoneOffset()))(utcSeconds * 1000);
  return utcSeconds + offset * 60;
}

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

export interface SeriesData {
  bars: Bar[];
  volume: VolumePoint[];
  lines: Record<IndicatorName, Point[]>;
}

export type Shift = (utcSeconds: number) => number;

export const UP = "#26a69a";
export const DOWN = "#ef5350";

export function toBar(c: ApiCandle, shift: Shift): Bar {
  return { time: shift(c.t), open: c.o, high: c.h, low: c.l, close: c.c };
}

export function toVolume(c: ApiCandle, shift: Shift): VolumePoint {
  return { time: shift(c.t), value: c.v, color: c.c >= c.o ? `${UP}80` : `${DOWN}80` };
}

/** An indicator's point, or null during warm-up (the series then has a gap, not a zero). */
export function toPoint(c: ApiCandle, name: IndicatorName, shift: Shift): Point | null {
  const value = c.indicators[name];
  return value === null || value === undefined || !Number.isFinite(value)
    ? null
    : { time: shift(c.t), value };
}

export function toSeries(candles: ApiCandle[], names: readonly IndicatorName[], shift: Shift): SeriesData {
  const lines = Object.fromEntries(names.map((n) => [n, [] as Point[]])) as Record<IndicatorName, Point[]>;
  for (const c of candles) {
    for (const n of names) {
      const p = toPoint(c, n, shift);
      if (p) lines[n].push(p);
    }
  }
  return {
    bars: candles.map((c) => toBar(c, shift)),
    volume: candles.map((c) => toVolume(c, shift)),
    lines,
  };
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
