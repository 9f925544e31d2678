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

/** The compared symbol's closes at the times the chart shows (a time the chart does not have
 * would add a bar to the time axis), ascending. */
export function comparePoints(shown: ApiCandle[], compare: ApiCandle[]): { time: number; value: number }[] {
  const times = new Set(shown.map((c) => c.t));
  return compare.filter((c) => times.has(c.t) && Number.isFinite(c.c)).map((c) => ({ time: c.t, value: c.c }));
}
