import { describe, expect, it } from "vitest";
import { formatValue, formatVolume, mergeCandles, toLocalTime, toSeries } from "./mapping";
import { INDICATOR_NAMES, type ApiCandle } from "./types";

function candle(t: number, o: number, c: number, extra: Partial<ApiCandle["indicators"]> = {}): ApiCandle {
  const indicators = Object.fromEntries(INDICATOR_NAMES.map((n) => [n, null])) as ApiCandle["indicators"];
  return { t, o, h: Math.max(o, c) + 1, l: Math.min(o, c) - 1, c, v: 100, closed: true, indicators: { ...indicators, ...extra } };
}

const utc = (t: number) => t;

describe("toSeries", () => {
  it("maps OHLC, colours volume by direction and leaves warm-up gaps", () => {
    const data = toSeries([candle(60, 10, 12), candle(120, 12, 11, { sma_20: 11.5 })], ["sma_20", "rsi_14"], utc);
    expect(data.bars).toEqual([
      { time: 60, open: 10, high: 13, low: 9, close: 12 },
      { time: 120, open: 12, high: 13, low: 10, close: 11 },
    ]);
    expect(data.volume.map((v) => v.color)).toEqual(["#26a69a80", "#ef535080"]);
    expect(data.lines.sma_20).toEqual([{ time: 120, value: 11.5 }]);
    expect(data.lines.rsi_14).toEqual([]);
  });

  it("shifts times with the given function", () => {
    const data = toSeries([candle(3600, 1, 2)], [], (t) => t + 7200);
    expect(data.bars[0].time).toBe(10800);
  });
});

describe("toLocalTime", () => {
  it("adds the local offset at that instant", () => {
    // New York in winter (UTC-5) and summer (UTC-4).
    const ny = (ms: number) => (new Date(ms).getUTCMonth() < 6 ? -300 : -240);
    expect(toLocalTime(Date.UTC(2026, 0, 5, 15) / 1000, ny)).toBe(Date.UTC(2026, 0, 5, 10) / 1000);
    expect(toLocalTime(Date.UTC(2026, 6, 6, 15) / 1000, ny)).toBe(Date.UTC(2026, 6, 6, 11) / 1000);
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
