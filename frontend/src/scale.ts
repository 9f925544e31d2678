/** The price scale (normal, logarithmic, percentage) and the comparison overlay's data. Pure. */

import type { ApiCandle } from "./types";

export type ScaleChoice = "normal" | "log" | "percent";
export const SCALE_CHOICES: { value: ScaleChoice; label: string }[] = [
  { value: "normal", label: "Normal" },
  { value: "log", label: "Log" },
  { value: "percent", label: "%" },
];

export function isScaleChoice(x: unknown): x is ScaleChoice {
  return x === "normal" || x === "log" || x === "percent";
}

/** The scale in force: percentage while another symbol is compared (each series then reads
 * as its change from its own first visible value), else the choice. */
export function effectiveScale(choice: ScaleChoice, comparing: boolean): ScaleChoice {
  return comparing ? "percent" : choice;
}

/** lightweight-charts' PriceScaleMode: Normal 0, Logarithmic 1, Percentage 2. */
export function priceScaleMode(scale: ScaleChoice): 0 | 1 | 2 {
  return scale === "log" ? 1 : scale === "percent" ? 2 : 0;
}

/** The compared symbol's line: at each time the chart shows (a time the chart does not have
 * would add a bar to the time axis), its last close as of then, ascending. Carried forward over
 * a candle it does not have (no trade in that interval), so the line has a point at the first
 * candle in view, whatever it is: in percentage mode each series is measured from its own first
 * visible value, and both must be of the same time. None before its first candle. */
export function comparePoints(shown: ApiCandle[], compare: ApiCandle[]): { time: number; value: number }[] {
  const points: { time: number; value: number }[] = [];
  let j = 0;
  let last: number | null = null;
  for (const c of shown) {
    for (; j < compare.length && compare[j].t <= c.t; j++) if (Number.isFinite(compare[j].c)) last = compare[j].c;
    if (last !== null) points.push({ time: c.t, value: last });
  }
  return points;
}

/** The span of the compared symbol's candles still to fetch so that they cover the chart's,
 * from its first candle (``first``): all of it up to the latest when none is fetched yet
 * (``covered`` null), else what older pages of the chart added before ``covered`` (the start of
 * what was fetched); null when nothing is missing or the chart has no candles yet. */
export function compareSpan(first: number | undefined, covered: number | null): { start: number; end?: number } | null {
  if (first === undefined) return null;
  if (covered === null) return { start: first };
  return first < covered ? { start: first, end: covered } : null;
}
