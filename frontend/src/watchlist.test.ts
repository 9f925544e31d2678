import { describe, expect, it } from "vitest";
import type { ApiCandle, Signal } from "./types";
import { change, latestBySymbol, sortRows, sparkInterval, sparkline, sparkPath, type WatchRow } from "./watchlist";

const candle = (t: number, c: number): ApiCandle => ({ t, o: c, h: c, l: c, c, v: 1, closed: true, indicators: {} });
const row = (symbol: string, last: number | null, chg: number | null, start?: number): WatchRow => ({
  symbol,
  last,
  open: null,
  change: chg,
  spark: [],
  signal: start === undefined ? null : ({ symbol, start } as Signal),
});

describe("watchlist", () => {
  it("gives the change since the open in percent", () => {
    expect(change(200, 210)).toBeCloseTo(5);
    expect(change(null, 210)).toBeNull();
    expect(change(200, null)).toBeNull();
  });

  it("draws the session's closes with the live price last", () => {
    const candles = [candle(100, 1), candle(200, 2), candle(300, 3)];
    expect(sparkline(candles, 200, 3.5)).toEqual([2, 3.5]);
    expect(sparkline(candles, null, null)).toEqual([1, 2, 3]);
    expect(sparkline([], 0, 5)).toEqual([]);
    expect(sparkPath([1, 3, 2], 10, 4)).toBe("M0.0,4.0 L5.0,0.0 L10.0,2.0");
    expect(sparkPath([1], 10, 4)).toBe("");
    expect(sparkPath([2, 2], 10, 4)).toBe("M0.0,4.0 L10.0,4.0");
  });

  it("keeps each symbol's newest signal", () => {
    const s = (symbol: string, start: number) => ({ symbol, start }) as Signal;
    const latest = latestBySymbol([s("A", 3), s("B", 2), s("A", 1)]);
    expect(latest.get("A")?.start).toBe(3);
    expect(latest.get("B")?.start).toBe(2);
  });

  it("sorts by any column, rows without the value last", () => {
    const rows = [row("B", 2, -1), row("A", 3, null, 5), row("C", 1, 4, 9)];
    expect(sortRows(rows, "change", true).map((r) => r.symbol)).toEqual(["C", "B", "A"]);
    expect(sortRows(rows, "change", false).map((r) => r.symbol)).toEqual(["B", "C", "A"]);
    expect(sortRows(rows, "symbol", false).map((r) => r.symbol)).toEqual(["A", "B", "C"]);
    expect(sortRows(rows, "last", true).map((r) => r.symbol)).toEqual(["A", "B", "C"]);
    expect(sortRows(rows, "signal", true).map((r) => r.symbol)).toEqual(["C", "A", "B"]);
  });

  it("draws the sparkline from 15m candles, or the longest intraday interval", () => {
    expect(sparkInterval(["1m", "5m", "15m", "1h", "1d"])).toBe("15m");
    expect(sparkInterval(["1m", "5m", "1d"])).toBe("5m");
    expect(sparkInterval(["1d"])).toBeNull();
  });
});
