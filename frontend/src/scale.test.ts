import { describe, expect, it } from "vitest";
import { comparePoints, compareSpan, effectiveScale, isScaleChoice, priceScaleMode } from "./scale";
import type { ApiCandle } from "./types";

const candle = (t: number, c: number): ApiCandle => ({ t, session: "regular", o: c, h: c, l: c, c, v: 1, closed: true, indicators: {} });

describe("price scale", () => {
  it("maps the choice to lightweight-charts' PriceScaleMode", () => {
    expect(priceScaleMode("normal")).toBe(0);
    expect(priceScaleMode("log")).toBe(1);
    expect(priceScaleMode("percent")).toBe(2);
  });

  it("is percentage while comparing, whatever was chosen", () => {
    expect(effectiveScale("log", false)).toBe("log");
    expect(effectiveScale("log", true)).toBe("percent");
    expect(effectiveScale("normal", true)).toBe("percent");
  });

  it("checks saved values", () => {
    expect(["normal", "log", "percent", "linear", null].map(isScaleChoice)).toEqual([true, true, true, false, false]);
  });
});

describe("comparePoints", () => {
  it("draws the compared closes at the chart's times only, the last one carried forward", () => {
    const shown = [candle(60, 100), candle(120, 101), candle(240, 103)];
    const other = [candle(0, 9), candle(60, 10), candle(180, 11), candle(240, 12)];
    expect(comparePoints(shown, other)).toEqual([
      { time: 60, value: 10 },
      { time: 120, value: 10 }, // no candle of its own at 120: its close as of then
      { time: 240, value: 12 },
    ]);
    expect(comparePoints(shown, [])).toEqual([]);
  });

  it("has a point at the chart's first candle when it has a candle at or before it", () => {
    const shown = [candle(600, 100), candle(660, 101), candle(720, 102)];
    // Its candle before the chart's first (fetched with the span): the value as of 600.
    expect(comparePoints(shown, [candle(300, 50), candle(720, 55)])).toEqual([
      { time: 600, value: 50 },
      { time: 660, value: 50 },
      { time: 720, value: 55 },
    ]);
    // Nothing before its first candle.
    expect(comparePoints(shown, [candle(660, 7)])).toEqual([
      { time: 660, value: 7 },
      { time: 720, value: 7 },
    ]);
    // A close that is not a number is skipped.
    expect(comparePoints(shown, [candle(600, 5), candle(660, NaN)])).toEqual([
      { time: 600, value: 5 },
      { time: 660, value: 5 },
      { time: 720, value: 5 },
    ]);
  });
});

describe("compareSpan", () => {
  it("asks for the chart's span, then for what older pages of the chart add", () => {
    expect(compareSpan(undefined, null)).toBeNull(); // the chart has no candles yet
    expect(compareSpan(1000, null)).toEqual({ start: 1000 }); // from the chart's first, to the latest
    expect(compareSpan(1000, 1000)).toBeNull(); // covered
    expect(compareSpan(1200, 1000)).toBeNull(); // another symbol's chart, starting later
    expect(compareSpan(400, 1000)).toEqual({ start: 400, end: 1000 }); // an older page loaded
  });
});
