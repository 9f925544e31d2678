/** The time zone the chart's times are shown in: the exchange's (/api/meta's timezone), the
 * browser's, or UTC. The data stays in UTC epoch seconds (lightweight-charts draws UTC); only
 * the labels (time axis, crosshair, legend) are formatted in the chosen zone. Pure. */

export type ZoneChoice = "exchange" | "local" | "utc";
export const ZONE_CHOICES: ZoneChoice[] = ["exchange", "local", "utc"];

export function isZoneChoice(x: unknown): x is ZoneChoice {
  return typeof x === "string" && (ZONE_CHOICES as string[]).includes(x);
}

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export function isValidZone(zone: string | undefined): zone is string {
  if (!zone) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The IANA zone in force for a choice: the exchange's falls back to UTC when the server names
 * none (or one this browser does not know). */
export function resolveZone(choice: ZoneChoice, exchangeZone: string | undefined, localZone: string = browserZone()): string {
  if (choice === "utc") return "UTC";
  if (choice === "local") return isValidZone(localZone) ? localZone : "UTC";
  return isValidZone(exchangeZone) ? exchangeZone : "UTC";
}

const formats = new Map<string, Intl.DateTimeFormat>();

function format(zone: string, style: string, options: Intl.DateTimeFormatOptions, locale = "en-GB"): Intl.DateTimeFormat {
  const key = `${zone}|${style}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, { timeZone: zone, hourCycle: "h23", ...options });
    formats.set(key, f);
  }
  return f;
}

function parts(f: Intl.DateTimeFormat, t: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of f.formatToParts(t * 1000)) out[p.type] = p.value;
  return out;
}

const pad = (s: string | undefined) => (s ?? "").padStart(2, "0");

/** The zone a chart's labels (axis, crosshair, legend) are in. Intraday candles: the chosen
 * one. Daily candles are trading days, dated in the exchange's zone whatever zone is chosen: a
 * 1d candle starts at the session's open (09:30 New York, 14:30 UTC, on XNYS: already the next
 * day in Sydney) or, on ALWAYS_OPEN, at midnight in the market's zone (05:00 UTC for New York:
 * still the day before in Los Angeles), so its date anywhere else can be the wrong day. */
export function labelZone(chosen: string, exchange: string, daily: boolean): string {
  return daily ? exchange : chosen;
}

/** "2026-12-04 09:30" (with ":15" seconds when not zero), or "2026-12-04" for a daily candle:
 * the legend's and the crosshair's time. A daily candle's ``zone`` is the exchange's
 * (labelZone). */
export function formatTime(t: number, zone: string, daily = false): string {
  const p = parts(format(zone, "full", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }), t);
  const date = `${p.year}-${pad(p.month)}-${pad(p.day)}`;
  if (daily) return date;
  const seconds = p.second && p.second !== "00" ? `:${pad(p.second)}` : "";
  return `${date} ${pad(p.hour)}:${pad(p.minute)}${seconds}`;
}

/** The zone's short name at that instant, e.g. "EST", "GMT+1", "UTC". */
export function zoneAbbreviation(t: number, zone: string): string {
  return parts(format(zone, "abbr", { timeZoneName: "short" }, "en-US"), t).timeZoneName ?? zone;
}

// Offsets change only at instants on a quarter hour (UTC), so one look-up per zone and quarter
// hour serves every bar in it: a chart of 5,000 1m candles asks Intl ~350 times, not 5,000.
const QUARTER = 900;
const offsets = new Map<string, number>();

/** The zone's offset from UTC at that instant, in seconds: -18000 for New York in winter,
 * -14400 in summer (per instant, so each bar gets the offset of its own date). */
export function zoneOffset(t: number, zone: string): number {
  const bucket = Math.floor(t / QUARTER);
  const key = `${zone}|${bucket}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const at = bucket * QUARTER;
    const p = parts(format(zone, "full", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }), at);
    const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute), Number(p.second)) / 1000;
    offset = wall - at;
    if (offsets.size > 100_000) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

/** lightweight-charts' TickMarkWeight: how much a bar starts (a new minute, hour, day...). */
export const WEIGHT = { none: 0, second: 10, minute: 20, minute5: 21, minute30: 22, hour: 30, hour3: 31, hour6: 32, hour12: 33, day: 50, month: 60, year: 70 } as const;

const INTRADAY: [number, number][] = [
  [12 * 3600, WEIGHT.hour12],
  [6 * 3600, WEIGHT.hour6],
  [3 * 3600, WEIGHT.hour3],
  [3600, WEIGHT.hour],
  [1800, WEIGHT.minute30],
  [300, WEIGHT.minute5],
  [60, WEIGHT.minute],
  [1, WEIGHT.second],
];

/** The weight of a bar at ``t`` after one at ``prev``, by the zone's calendar and clock: what
 * lightweight-charts computes from UTC dates, here from the zone's wall-clock time. */
export function tickWeight(t: number, prev: number, zone: string): number {
  const now = t + zoneOffset(t, zone);
  const before = prev + zoneOffset(prev, zone);
  const a = new Date(now * 1000);
  const b = new Date(before * 1000);
  if (a.getUTCFullYear() !== b.getUTCFullYear()) return WEIGHT.year;
  if (a.getUTCMonth() !== b.getUTCMonth()) return WEIGHT.month;
  if (a.getUTCDate() !== b.getUTCDate()) return WEIGHT.day;
  for (const [divisor, weight] of INTRADAY) if (Math.floor(now / divisor) !== Math.floor(before / divisor)) return weight;
  return WEIGHT.none;
}

/** Fills the weights of the chart's time points from ``startIndex`` on in the zone (the
 * horizontal scale behaviour's fillWeightsForPoints): the first bar of a day in the zone is a
 * day (month, year) tick mark, whatever its UTC date. As the library does, the very first
 * point's weight is guessed from the average spacing. */
export function fillZoneWeights<P extends { timeWeight: number }>(points: P[], startIndex: number, zone: string, timeOf: (p: P) => number): void {
  if (points.length === 0) return;
  let prev = startIndex > 0 ? timeOf(points[startIndex - 1]) : null;
  for (let i = startIndex; i < points.length; i++) {
    const t = timeOf(points[i]);
    if (prev !== null) points[i].timeWeight = tickWeight(t, prev, zone);
    prev = t;
  }
  if (startIndex === 0 && points.length > 1) {
    const first = timeOf(points[0]);
    const average = Math.ceil((timeOf(points[points.length - 1]) - first) / (points.length - 1));
    points[0].timeWeight = tickWeight(first, first - average, zone);
  }
}

/** lightweight-charts' TickMarkType, as numbers (Year, Month, DayOfMonth, Time, TimeWithSeconds). */
export const TICK = { year: 0, month: 1, day: 2, time: 3, seconds: 4 } as const;

/** A label of the time axis in the zone: a year, a month, a day of the month or a time. The
 * chart's tick marks are weighted by the zone's calendar (fillZoneWeights, Chart.tsx), so a
 * day (month, year) mark is the first bar of a day in the zone: its date, even when that bar
 * is not midnight (09:30 on XNYS, 04:00 with extended hours). */
export function tickLabel(t: number, type: number, zone: string): string {
  switch (type) {
    case TICK.year:
      return parts(format(zone, "year", { year: "numeric" }), t).year ?? "";
    case TICK.month:
      return parts(format(zone, "month", { month: "short" }), t).month ?? "";
    case TICK.day: {
      const p = parts(format(zone, "day", { day: "numeric", month: "short" }), t);
      return `${p.day} ${p.month}`;
    }
    case TICK.seconds: {
      const p = parts(format(zone, "hms", { hour: "2-digit", minute: "2-digit", second: "2-digit" }), t);
      return `${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
    }
    default: {
      const p = parts(format(zone, "hm", { hour: "2-digit", minute: "2-digit" }), t);
      return `${pad(p.hour)}:${pad(p.minute)}`;
    }
  }
}
