import { describe, expect, it } from "vitest";
import { isSignal, parseLiveMessage } from "./live";

const signal = {
  key: "AAPL|1m|golden_cross|1767621600000",
  symbol: "AAPL",
  interval: "1m",
  rule: "golden_cross",
  kind: "crosses_above",
  start: 1767621600000,
  end: 1767621660000,
  values: { sma_20: 231.5, sma_50: null },
  provisional: false,
};
const candle = { t: 1767621600, o: 1, h: 2, l: 0.5, c: 1.5, v: 10, closed: false, indicators: { sma_20: null, rsi_14: 55 } };

describe("live messages", () => {
  it("passes well-formed candles and signals", () => {
    const c = { type: "candle", symbol: "AAPL", interval: "1m", candle, sent_at: 1 };
    expect(parseLiveMessage(JSON.stringify(c))).toEqual(c);
    const s = { type: "signal", signal, sent_at: 1 };
    expect(parseLiveMessage(JSON.stringify(s))).toEqual(s);
  });

  it("drops what the page could not draw", () => {
    const bad = [
      "not json",
      "null",
      "[]",
      JSON.stringify({ type: "signal", signal: { ...signal, values: { sma_20: "not a number" } } }),
      JSON.stringify({ type: "signal", signal: { ...signal, start: "soon" } }),
      JSON.stringify({ type: "signal", signal: { ...signal, symbol: undefined } }),
      JSON.stringify({ type: "signal" }),
      JSON.stringify({ type: "candle", symbol: "AAPL", interval: "1m", candle: { ...candle, c: "1.5" } }),
      JSON.stringify({ type: "candle", symbol: "AAPL", interval: "1m", candle: { ...candle, indicators: null } }),
      JSON.stringify({ type: "other" }),
    ];
    for (const text of bad) expect(parseLiveMessage(text)).toBeNull();
    expect(parseLiveMessage(undefined)).toBeNull();
    expect(isSignal({ ...signal, provisional: "no" })).toBe(false);
  });
});
