import { describe, expect, it } from "vitest";
import { describeValues, filterSignals, mergeSignals, toMarkers } from "./signals";
import type { Signal } from "./types";

const T = 1_767_621_600_000;

function sig(rule: string, start: number, extra: Partial<Signal> = {}): Signal {
  const s: Signal = {
    key: "",
    symbol: "AAPL",
    interval: "1m",
    rule,
    kind: "crosses_above",
    start,
    end: start + 60_000,
    values: { close: 101, level: 100 },
    provisional: false,
    ...extra,
  };
  s.key = `${s.symbol}|${s.interval}|${s.rule}|${s.start}${s.provisional ? "|provisional" : ""}`;
  return s;
}

describe("mergeSignals", () => {
  it("keeps one per key, newest first, and drops a provisional once its final came", () => {
    const early = sig("x", T + 60_000, { provisional: true });
    const merged = mergeSignals([sig("x", T), early], [sig("x", T), sig("y", T + 60_000)]);
    expect(merged.map((s) => s.key)).toEqual([early.key, sig("y", T + 60_000).key, sig("x", T).key]);
    const confirmed = mergeSignals(merged, [sig("x", T + 60_000)]);
    expect(confirmed.filter((s) => s.provisional)).toEqual([]);
    expect(confirmed).toHaveLength(3);
  });

  it("keeps at most max", () => {
    const many = Array.from({ length: 10 }, (_, i) => sig("x", T + i * 60_000));
    expect(mergeSignals([], many, 4).map((s) => s.start)).toEqual([9, 8, 7, 6].map((i) => T + i * 60_000));
  });
});

describe("filterSignals", () => {
  it("matches symbol or rule, any case", () => {
    const list = [sig("golden_cross", T), sig("rsi_hot", T, { symbol: "MSFT" })];
    expect(filterSignals(list, "msft").map((s) => s.rule)).toEqual(["rsi_hot"]);
    expect(filterSignals(list, "GOLDEN").map((s) => s.symbol)).toEqual(["AAPL"]);
    expect(filterSignals(list, " ")).toHaveLength(2);
  });
});

describe("toMarkers", () => {
  it("marks the signals on shown candles, up below the bar, down above, provisional as a circle", () => {
    const signals = [
      sig("down", T + 60_000, { kind: "crosses_below" }),
      sig("up", T),
      sig("maybe", T + 60_000, { provisional: true }),
      sig("elsewhere", T + 600_000),
    ];
    const times = new Set([T / 1000, T / 1000 + 60]);
    const markers = toMarkers(signals, times, { up: "green", down: "red" });
    expect(markers.map((m) => [m.time, m.position, m.shape, m.color, m.text])).toEqual([
      [T / 1000, "belowBar", "arrowUp", "green", "up"],
      [T / 1000 + 60, "aboveBar", "arrowDown", "red", "down"],
      [T / 1000 + 60, "belowBar", "circle", "green", "maybe?"],
    ]);
  });
});

it("describes the values a signal compared", () => {
  expect(describeValues({ sma_20: 233.412345678, sma_50: null })).toBe("sma_20 233.4123 · sma_50 –");
});
