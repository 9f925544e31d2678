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

/** "2026-12-04 09:30" (with ":15" seconds when not zero), or "2026-12-04" for a daily candle:
 * the legend's and the crosshair's time. */
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

/** lightweight-charts' TickMarkType, as numbers (Year, Month, DayOfMonth, Time, TimeWithSeconds). */
export const TICK = { year: 0, month: 1, day: 2, time: 3, seconds: 4 } as const;

/** A label of the time axis: a year, a month, a day of the month or a time, in the zone. The
 * chart places its tick marks by UTC boundaries; only their text follows the zone. So an
 * intraday tick the chart marks as a new day (month, year) is labelled with its time unless it
 * is midnight in the zone too: 19:00 in New York, not a date that has not begun there. */
export function tickLabel(t: number, type: number, zone: string, daily = false): string {
  if (!daily && type <= TICK.day) {
    const p = parts(format(zone, "hm", { hour: "2-digit", minute: "2-digit" }), t);
    if (pad(p.hour) !== "00" || pad(p.minute) !== "00") return `${pad(p.hour)}:${pad(p.minute)}`;
  }
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
