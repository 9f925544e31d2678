import { describe, expect, it } from "vitest";
import { chartLayout, chartUpdates, formatValue, formatVolume, mergeCandles, toPoint } from "./mapping";
import type { ApiCandle, IndicatorInfo } from "./types";

function candle(t: number, o: number, c: number, extra: Partial<ApiCandle["indicators"]> = {}): ApiCandle {
  return { t, o, h: Math.max(o, c) + 1, l: Math.min(o, c) - 1, c, v: 100, closed: true, indicators: { sma_20: null, ...extra } };
}

describe("toPoint", () => {
  it("gives a point, or null during warm-up (a gap, not a zero)", () => {
    expect(toPoint(candle(120, 12, 11, { sma_20: 11.5 }), "sma_20")).toEqual({ time: 120, value: 11.5 });
    expect(toPoint(candle(60, 10, 12), "sma_20")).toBeNull();
    expect(toPoint(candle(60, 10, 12), "not_sent")).toBeNull();
  });
});

describe("chartLayout", () => {
  const info = (key: string, kind: string, pane: string, outputs: string[]): IndicatorInfo => ({ key, kind, params: [], label: key, pane, outputs });
  const indicators = [
    info("sma_20", "sma", "price", ["sma_20"]),
    info("sma_50", "sma", "price", ["sma_50"]),
    info("rsi_14", "rsi", "rsi", ["rsi_14"]),
    info("macd_12_26_9", "macd", "macd", ["macd", "macd_signal", "macd_hist"]),
  ];

  it("puts overlays on the price pane and gives each other shown indicator a pane", () => {
    const { series, panes } = chartLayout(indicators, { sma_20: true, sma_50: true, rsi_14: false, macd_12_26_9: true });
    expect(panes).toBe(2);
    expect(series.map((s) => [s.output, s.pane, s.histogram])).toEqual([
      ["sma_20", 0, false],
      ["sma_50", 0, false],
      ["macd", 1, false],
      ["macd_signal", 1, false],
      ["macd_hist", 1, true],
    ]);
    expect(series[0].color).not.toBe(series[1].color);
  });

  it("shows nothing that is not toggled on", () => {
    expect(chartLayout(indicators, { volume: true })).toEqual({ series: [], panes: 1 });
  });
});

describe("mergeCandles", () => {
  const base = [candle(60, 1, 2), candle(120, 2, 3)];

  it("replaces the forming candle in place", () => {
    const updated = { ...candle(120, 2, 4), closed: false };
    const merged = mergeCandles(base, [updated]);
    expect(merged).toHaveLength(2);
    expect(merged[1].c).toBe(4);
  });

  it("appends a new candle", () => {
    expect(mergeCandles(base, [candle(180, 3, 3)]).map((c) => c.t)).toEqual([60, 120, 180]);
  });

  it("prepends an older page without duplicates, ascending", () => {
    const merged = mergeCandles(base, [candle(0, 1, 1), candle(60, 9, 9)]);
    expect(merged.map((c) => c.t)).toEqual([0, 60, 120]);
    expect(merged[1].c).toBe(9);
  });
});

describe("formatting", () => {
  it("formats numbers and gaps", () => {
    expect(formatValue(1234.5)).toBe("1,234.50");
    expect(formatValue(null)).toBe("–");
    expect(formatVolume(1_500_000)).toBe("1.50M");
    expect(formatVolume(950)).toBe("950");
  });
});

describe("chartUpdates", () => {
  const base = [candle(0, 1, 2), candle(60, 2, 3), candle(120, 3, 4)];

  it("redraws the last candle, or appends one", () => {
    const changed = mergeCandles(base, [candle(120, 3, 5)]);
    expect(chartUpdates(base, changed)).toEqual([{ candle: changed[2], historical: false }]);
    const added = mergeCandles(base, [candle(180, 4, 4)]);
    expect(chartUpdates(base, added)).toEqual([{ candle: added[3], historical: false }]);
  });

  it("redraws the candle before the last in place when it changes after the next one began", () => {
    // A grace period: 01:00 still forming (a late tick, then its close) while 02:00 forms.
    const next = mergeCandles(base, [candle(60, 2, 9), candle(120, 3, 4.5)]);
    expect(chartUpdates(base, next)).toEqual([
      { candle: next[1], historical: true },
      { candle: next[2], historical: false },
    ]);
  });

  it("resets when history is prepended or a candle lands between two it has", () => {
    expect(chartUpdates(base, mergeCandles(base, [candle(-60, 1, 1)]))).toBeNull();
    const gappy = [candle(0, 1, 2), candle(120, 3, 4)];
    expect(chartUpdates(gappy, mergeCandles(gappy, [candle(60, 2, 3)]))).toBeNull();
    expect(chartUpdates([], base)).toBeNull();
  });
});
