/** Trading sessions on the chart (docs/streaming.md#sessions): which candles are extended
 * hours (pre-market, after-hours), hiding them, the shaded band behind them and the legend's
 * name for a session. Pure: tested with vitest. */

import type { ApiCandle, Meta, Session } from "./types";

/** Pre-market and after-hours candles: shaded, and hidden with the extended-hours toggle off.
 * A 1d candle's "extended" (its day counts the extended hours) is a whole day, not one of them. */
export function isExtended(c: Pick<ApiCandle, "session">): boolean {
  return c.session === "pre" || c.session === "post";
}

export function hasExtended(candles: ApiCandle[]): boolean {
  return candles.some(isExtended);
}

/** The candles the chart shows: all of them, or without pre/post. The same array when nothing
 * is left out (the chart then redraws only what a live update changed). */
export function visibleCandles(candles: ApiCandle[], extended: boolean): ApiCandle[] {
  if (extended || !hasExtended(candles)) return candles;
  return candles.filter((c) => !isExtended(c));
}

/** Whether the toolbar offers the extended-hours toggle: when the data has pre/post candles or
 * the server counts the extended day. Never on the always-open calendar (every candle is
 * regular there). */
export function offersExtended(meta: Pick<Meta, "always_open" | "session_hours"> | null, candles: ApiCandle[]): boolean {
  if (!meta || meta.always_open) return false;
  return meta.session_hours === "extended" || hasExtended(candles);
}

/** The bands' colours: pre-market blue, after-hours orange, both faint. */
export const SHADE = {
  dark: { pre: "rgba(41, 98, 255, 0.12)", post: "rgba(255, 152, 0, 0.10)" },
  light: { pre: "rgba(41, 98, 255, 0.08)", post: "rgba(255, 152, 0, 0.10)" },
};

/** A run of consecutive pre-market (or after-hours) candles the chart shows: one shaded band
 * from the first's start to the last's. */
export interface Span {
  from: number;
  to: number;
  session: "pre" | "post";
}

export function extendedSpans(candles: ApiCandle[]): Span[] {
  const spans: Span[] = [];
  let open: Span | null = null;
  for (const c of candles) {
    const session = c.session === "pre" || c.session === "post" ? c.session : null;
    if (open && session === open.session) open.to = c.t;
    else {
      open = session ? { from: c.t, to: c.t, session } : null;
      if (open) spans.push(open);
    }
  }
  return spans;
}

export function countExtended(candles: ApiCandle[]): number {
  let n = 0;
  for (const c of candles) if (isExtended(c)) n++;
  return n;
}

const LABELS: Record<Session, string> = {
  pre: "pre-market",
  regular: "regular",
  post: "after-hours",
  extended: "extended hours",
  closed: "closed",
};

/** The legend's name of a candle's session; "" when the server did not say. */
export function sessionLabel(session: Session | undefined): string {
  return session ? (LABELS[session] ?? session) : "";
}
