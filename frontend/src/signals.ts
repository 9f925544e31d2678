/** Signals for the chart and the panel: merging what the API and the live feeds give, and
 * markers at their candles. Pure functions (signals.test.ts). */

import type { Signal } from "./types";

/** Kinds that point up (a marker below the bar): the rest point down. */
const UPWARD = new Set(["crosses_above", "enters_above", "leaves_below", "breakout_up"]);

export const isUpward = (kind: string) => UPWARD.has(kind);

const identity = (s: Signal) => `${s.symbol}|${s.interval}|${s.rule}|${s.start}`;

/** ``incoming`` added to ``current``, newest candle first, at most ``max``: one entry per key;
 * a provisional signal goes once the final one of its rule and candle is there. */
export function mergeSignals(current: Signal[], incoming: Signal[], max = 500): Signal[] {
  const byKey = new Map<string, Signal>();
  for (const s of [...current, ...incoming]) byKey.set(s.key, s);
  const finals = new Set([...byKey.values()].filter((s) => !s.provisional).map(identity));
  const kept = [...byKey.values()].filter((s) => !s.provisional || !finals.has(identity(s)));
  kept.sort((a, b) => b.start - a.start || a.symbol.localeCompare(b.symbol) || a.rule.localeCompare(b.rule));
  return kept.slice(0, max);
}

/** Signals whose symbol or rule contains ``text`` (case-insensitive; empty: all). */
export function filterSignals(signals: Signal[], text: string): Signal[] {
  const wanted = text.trim().toLowerCase();
  if (!wanted) return signals;
  return signals.filter((s) => s.symbol.toLowerCase().includes(wanted) || s.rule.toLowerCase().includes(wanted));
}

export interface Marker {
  time: number; // the chart's time of the candle (its start, epoch seconds, UTC)
  position: "aboveBar" | "belowBar";
  shape: "arrowUp" | "arrowDown" | "circle";
  color: string;
  text: string;
  id: string;
}

/** Markers of the signals on candles the chart shows (``times``: their starts in epoch
 * seconds), ascending, as lightweight-charts wants them. A provisional signal is a circle. */
export function toMarkers(signals: Signal[], times: Set<number>, colors: { up: string; down: string }): Marker[] {
  return signals
    .filter((s) => times.has(s.start / 1000))
    .map((s) => {
      const up = isUpward(s.kind);
      return {
        time: s.start / 1000,
        position: up ? ("belowBar" as const) : ("aboveBar" as const),
        shape: s.provisional ? ("circle" as const) : up ? ("arrowUp" as const) : ("arrowDown" as const),
        color: up ? colors.up : colors.down,
        text: s.provisional ? `${s.rule}?` : s.rule,
        id: s.key,
      };
    })
    .sort((a, b) => a.time - b.time || a.id.localeCompare(b.id));
}

/** "sma_20 233.41 · sma_50 233.38": what a signal compared. */
export function describeValues(values: Signal["values"]): string {
  return Object.entries(values)
    .map(([name, v]) => `${name} ${v === null ? "–" : Number(v.toFixed(4))}`)
    .join(" · ");
}
