import { describe, expect, it } from "vitest";
import { comparePoints, effectiveScale, isScaleChoice, priceScaleMode } from "./scale";
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
  it("draws the compared closes at the chart's times only", () => {
    const shown = [candle(60, 100), candle(120, 101), candle(240, 103)];
    const other = [candle(0, 9), candle(60, 10), candle(180, 11), candle(240, 12)];
    expect(comparePoints(shown, other)).toEqual([
      { time: 60, value: 10 },
      { time: 240, value: 12 },
    ]);
    expect(comparePoints(shown, [])).toEqual([]);
  });
});
