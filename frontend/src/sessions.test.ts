import { describe, expect, it } from "vitest";
import { countExtended, hasExtended, isExtended, extendedSpans, offersExtended, sessionLabel, visibleCandles } from "./sessions";
import type { ApiCandle, Session } from "./types";

const candle = (t: number, session?: Session): ApiCandle => ({ t, session, o: 1, h: 2, l: 0.5, c: 1.5, v: 10, closed: true, indicators: { sma_20: 1 } });
// A morning: 09:29 pre-market, 09:30 and 15:59 regular, 16:00 after-hours.
const day = [candle(100, "pre"), candle(160, "regular"), candle(220, "regular"), candle(280, "post")];

describe("sessions", () => {
  it("counts pre-market and after-hours as extended, not a 1d candle's extended day", () => {
    expect(day.map(isExtended)).toEqual([true, false, false, true]);
    expect(isExtended(candle(0, "extended"))).toBe(false);
    expect(isExtended(candle(0))).toBe(false);
    expect(countExtended(day)).toBe(2);
    expect(hasExtended(day.slice(1, 3))).toBe(false);
  });

  it("leaves pre/post candles out when extended hours are off", () => {
    expect(visibleCandles(day, false).map((c) => c.t)).toEqual([160, 220]);
    expect(visibleCandles(day, true)).toBe(day);
    // Nothing to leave out: the same array (the chart redraws only what changed).
    const regular = day.slice(1, 3);
    expect(visibleCandles(regular, false)).toBe(regular);
    // The same candle objects are kept.
    expect(visibleCandles(day, false)[0]).toBe(day[1]);
  });

  it("shades runs of pre/post candles as bands", () => {
    expect(extendedSpans(day)).toEqual([
      { from: 100, to: 100, session: "pre" },
      { from: 280, to: 280, session: "post" },
    ]);
    // After-hours straight into the next pre-market (no regular candle between): two bands.
    const night = [candle(0, "pre"), candle(60, "pre"), candle(120, "regular"), candle(180, "post"), candle(240, "post"), candle(300, "pre")];
    expect(extendedSpans(night)).toEqual([
      { from: 0, to: 60, session: "pre" },
      { from: 180, to: 240, session: "post" },
      { from: 300, to: 300, session: "pre" },
    ]);
    expect(extendedSpans(visibleCandles(night, false))).toEqual([]);
  });

  it("offers the toggle for extended data or extended hours, never on the always-open calendar", () => {
    const regular = day.slice(1, 3);
    expect(offersExtended({ always_open: false, session_hours: "extended" }, regular)).toBe(true);
    expect(offersExtended({ always_open: false, session_hours: "regular" }, day)).toBe(true);
    expect(offersExtended({ always_open: false, session_hours: "regular" }, regular)).toBe(false);
    expect(offersExtended({ always_open: true, session_hours: "extended" }, day)).toBe(false);
    expect(offersExtended(null, day)).toBe(false);
  });

  it("names sessions for the legend", () => {
    expect(["pre", "regular", "post", "extended", "closed"].map((s) => sessionLabel(s as Session))).toEqual([
      "pre-market",
      "regular",
      "after-hours",
      "extended hours",
      "closed",
    ]);
    expect(sessionLabel(undefined)).toBe("");
  });
});
