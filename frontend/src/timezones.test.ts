import { describe, expect, it } from "vitest";
import { TICK, WEIGHT, fillZoneWeights, formatTime, isZoneChoice, labelZone, resolveZone, tickLabel, tickWeight, zoneAbbreviation, zoneOffset } from "./timezones";

// 2026-12-04 14:30 UTC: 09:30 in New York (EST), 15:30 in Berlin.
const OPEN = Date.UTC(2026, 11, 4, 14, 30) / 1000;
// 2026-07-06 13:30 UTC: 09:30 in New York (EDT).
const SUMMER = Date.UTC(2026, 6, 6, 13, 30) / 1000;

describe("time zones", () => {
  it("resolves a choice to an IANA zone", () => {
    expect(resolveZone("exchange", "America/New_York", "Europe/Berlin")).toBe("America/New_York");
    expect(resolveZone("local", "America/New_York", "Europe/Berlin")).toBe("Europe/Berlin");
    expect(resolveZone("utc", "America/New_York", "Europe/Berlin")).toBe("UTC");
    // No zone from the server, or one this browser does not know: UTC.
    expect(resolveZone("exchange", undefined, "Europe/Berlin")).toBe("UTC");
    expect(resolveZone("exchange", "Not/AZone", "Europe/Berlin")).toBe("UTC");
    expect(isZoneChoice("utc")).toBe(true);
    expect(isZoneChoice("UTC+1")).toBe(false);
  });

  it("formats a time in the zone, not by shifting the data", () => {
    expect(formatTime(OPEN, "America/New_York")).toBe("2026-12-04 09:30");
    expect(formatTime(OPEN, "UTC")).toBe("2026-12-04 14:30");
    expect(formatTime(OPEN, "Europe/Berlin")).toBe("2026-12-04 15:30");
    expect(formatTime(SUMMER, "America/New_York")).toBe("2026-07-06 09:30");
    expect(formatTime(OPEN + 15, "UTC")).toBe("2026-12-04 14:30:15");
    expect(formatTime(Date.UTC(2026, 11, 4) / 1000, "UTC")).toBe("2026-12-04 00:00");
    // A daily candle: its date (it starts at the session's open).
    expect(formatTime(OPEN, "America/New_York", true)).toBe("2026-12-04");
  });

  it("names the zone's abbreviation", () => {
    expect(zoneAbbreviation(OPEN, "UTC")).toBe("UTC");
    expect(zoneAbbreviation(OPEN, "America/New_York")).toBe("EST");
    expect(zoneAbbreviation(SUMMER, "America/New_York")).toBe("EDT");
  });

  it("dates a daily candle by its trading day: the exchange's date, whatever zone is chosen", () => {
    const ny = "America/New_York";
    // ALWAYS_OPEN in New York: the Dec 4 candle starts at midnight there, 05:00 UTC (still the
    // 3rd in Los Angeles).
    const midnightNy = Date.UTC(2026, 11, 4, 5) / 1000;
    expect(formatTime(midnightNy, labelZone("America/Los_Angeles", ny, true), true)).toBe("2026-12-04");
    expect(formatTime(midnightNy, "America/Los_Angeles", true)).toBe("2026-12-03"); // what it read before
    // XNYS: it starts at the open, 14:30 UTC (already the 5th in Sydney).
    expect(formatTime(OPEN, labelZone("Australia/Sydney", ny, true), true)).toBe("2026-12-04");
    expect(formatTime(OPEN, "Australia/Sydney", true)).toBe("2026-12-05");
    expect(tickLabel(OPEN, TICK.day, labelZone("Australia/Sydney", ny, true))).toBe("4 Dec");
    // Intraday: the chosen zone.
    expect(labelZone("Australia/Sydney", ny, false)).toBe("Australia/Sydney");
    expect(formatTime(OPEN, labelZone("Australia/Sydney", ny, false))).toBe("2026-12-05 01:30");
  });

  it("knows the zone's offset at each instant", () => {
    expect(zoneOffset(OPEN, "America/New_York")).toBe(-5 * 3600);
    expect(zoneOffset(SUMMER, "America/New_York")).toBe(-4 * 3600);
    expect(zoneOffset(OPEN, "UTC")).toBe(0);
    expect(zoneOffset(OPEN, "Asia/Kolkata")).toBe(5.5 * 3600);
    expect(zoneOffset(OPEN, "Australia/Sydney")).toBe(11 * 3600);
    // Around the end of daylight saving time in New York (2026-11-01, 06:00 UTC): per instant.
    const change = Date.UTC(2026, 10, 1, 6) / 1000;
    expect(zoneOffset(change - 60, "America/New_York")).toBe(-4 * 3600);
    expect(zoneOffset(change, "America/New_York")).toBe(-5 * 3600);
    expect(zoneOffset(change + 59, "America/New_York")).toBe(-5 * 3600);
  });

  it("weighs tick marks by the zone's calendar", () => {
    const ny = "America/New_York";
    const at = (h: number, m = 0, day = 4) => Date.UTC(2026, 11, day, h, m) / 1000;
    // XNYS: the first bar of the New York day (pre-market, 04:00 = 09:00 UTC) is a new day; the
    // first of the UTC day (19:00 New York) is not.
    expect(tickWeight(at(9), at(1, 5), ny)).toBe(WEIGHT.day); // 04:00 after 20:05 the day before
    expect(tickWeight(at(0, 0, 5), at(23, 55), ny)).toBe(WEIGHT.hour); // 19:00 after 18:55: a new hour, no date
    expect(tickWeight(at(14, 30), at(14, 25), ny)).toBe(WEIGHT.minute30);
    expect(tickWeight(at(14, 35), at(14, 30), ny)).toBe(WEIGHT.minute5);
    // Regular hours only: 09:30 after 16:00 the day before.
    expect(tickWeight(at(14, 30), at(20, 55, 3), ny)).toBe(WEIGHT.day);
    // Months and years in the zone: midnight of Jan 1 in Sydney is Dec 31, 13:00 UTC.
    expect(tickWeight(Date.UTC(2026, 11, 31, 13) / 1000, Date.UTC(2026, 11, 31, 12, 55) / 1000, "Australia/Sydney")).toBe(WEIGHT.year);
    expect(tickWeight(Date.UTC(2027, 0, 1, 0) / 1000, Date.UTC(2026, 11, 31, 23, 55) / 1000, "Australia/Sydney")).toBe(WEIGHT.hour);
    expect(tickWeight(Date.UTC(2027, 0, 1, 0) / 1000, Date.UTC(2026, 11, 31, 23, 55) / 1000, "UTC")).toBe(WEIGHT.year);
    // A half-hour zone's hours are its own: 10:00 in Kolkata is 04:30 UTC.
    expect(tickWeight(Date.UTC(2026, 11, 4, 4, 30) / 1000, Date.UTC(2026, 11, 4, 4, 25) / 1000, "Asia/Kolkata")).toBe(WEIGHT.hour);
  });

  it("fills the chart's weights from an index on, guessing the first", () => {
    const ny = "America/New_York";
    // 5m bars of Dec 3 19:50-20:05 and Dec 4 04:00-04:10 New York (extended hours).
    const times = [0, 5, 10, 15].map((m) => Date.UTC(2026, 11, 4, 0, 50 + m) / 1000).concat([0, 5, 10].map((m) => Date.UTC(2026, 11, 4, 9, m) / 1000));
    const points = times.map((t) => ({ t, timeWeight: -1 }));
    fillZoneWeights(points, 0, ny, (p) => p.t);
    // The first is guessed from the average spacing (83 min here): 18:26 before 19:50, an hour.
    expect(points.map((p) => p.timeWeight)).toEqual([WEIGHT.hour, WEIGHT.minute5, WEIGHT.hour, WEIGHT.minute5, WEIGHT.day, WEIGHT.minute5, WEIGHT.minute5]);
    // From an index on: the points before it keep theirs.
    const more = points.map((p) => ({ ...p, timeWeight: -1 }));
    fillZoneWeights(more, 4, ny, (p) => p.t);
    expect(more.map((p) => p.timeWeight)).toEqual([-1, -1, -1, -1, WEIGHT.day, WEIGHT.minute5, WEIGHT.minute5]);
    // In UTC the day changes at 00:00 UTC (19:00 New York), not at 04:00 New York.
    fillZoneWeights(more, 0, "UTC", (p) => p.t);
    expect(more[4].timeWeight).toBe(WEIGHT.hour6);
  });

  it("labels the time axis in the zone", () => {
    expect(tickLabel(OPEN, TICK.time, "America/New_York")).toBe("09:30");
    expect(tickLabel(OPEN, TICK.time, "UTC")).toBe("14:30");
    expect(tickLabel(OPEN + 15, TICK.seconds, "UTC")).toBe("14:30:15");
    const midnight = Date.UTC(2026, 11, 4) / 1000;
    expect(tickLabel(midnight, TICK.day, "UTC")).toBe("4 Dec");
    expect(tickLabel(midnight, TICK.month, "UTC")).toBe("Dec");
    expect(tickLabel(midnight, TICK.year, "UTC")).toBe("2026");
    // A day mark is the first bar of a day in the zone (tickWeight): its date there, even when
    // it is not midnight (09:30 on XNYS).
    expect(tickLabel(OPEN, TICK.day, "America/New_York")).toBe("4 Dec");
    expect(tickLabel(Date.UTC(2026, 11, 4, 9) / 1000, TICK.day, "America/New_York")).toBe("4 Dec");
    expect(tickLabel(OPEN, TICK.month, "America/New_York")).toBe("Dec");
    expect(tickLabel(Date.UTC(2026, 11, 31, 13) / 1000, TICK.year, "Australia/Sydney")).toBe("2027");
  });
});
