import { describe, expect, it } from "vitest";
import { TICK, formatTime, isZoneChoice, resolveZone, tickLabel, zoneAbbreviation } from "./timezones";

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

  it("labels the time axis in the zone", () => {
    expect(tickLabel(OPEN, TICK.time, "America/New_York")).toBe("09:30");
    expect(tickLabel(OPEN, TICK.time, "UTC")).toBe("14:30");
    expect(tickLabel(OPEN + 15, TICK.seconds, "UTC")).toBe("14:30:15");
    const midnight = Date.UTC(2026, 11, 4) / 1000;
    expect(tickLabel(midnight, TICK.day, "UTC")).toBe("4 Dec");
    expect(tickLabel(midnight, TICK.month, "UTC")).toBe("Dec");
    expect(tickLabel(midnight, TICK.year, "UTC")).toBe("2026");
    // The chart's new day is UTC midnight: 19:00 of the 3rd in New York, labelled so.
    expect(tickLabel(midnight, TICK.day, "America/New_York")).toBe("19:00");
    // Daily candles (starting at the open): their date.
    expect(tickLabel(OPEN, TICK.day, "America/New_York", true)).toBe("4 Dec");
    expect(tickLabel(OPEN, TICK.month, "America/New_York", true)).toBe("Dec");
  });
});
