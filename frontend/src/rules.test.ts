import { describe, expect, it } from "vitest";
import { exampleRule, ruleSeries, summary } from "./rules";
import type { IndicatorInfo, Rule } from "./types";

const info = (kind: string, params: number[], outputs: string[]): IndicatorInfo => ({
  key: [kind, ...params].join("_"),
  kind,
  params,
  label: kind,
  pane: kind === "rsi" || kind === "macd" ? kind : "price",
  outputs,
});

describe("rules", () => {
  const set = [info("ema", [9], ["ema_9"]), info("rsi", [7], ["rsi_7"]), info("sma", [200], ["sma_200"])];

  it("lists the candle's series, then the configured outputs", () => {
    expect(ruleSeries(set)).toEqual(["open", "high", "low", "close", "volume", "ema_9", "rsi_7", "sma_200"]);
  });

  it("makes an example from the configured indicators", () => {
    expect(JSON.parse(exampleRule(set, "5m"))).toEqual({ name: "my_cross", kind: "crosses_above", left: "ema_9", right: "sma_200", interval: "5m", symbols: "*" });
    expect(JSON.parse(exampleRule([set[1]], "1m"))).toMatchObject({ kind: "enters_above", series: "rsi_7", level: 70 });
    expect(JSON.parse(exampleRule([], "1m"))).toMatchObject({ kind: "breakout_up", lookback: 20 });
  });

  it("writes a rule in one line", () => {
    const rule = { name: "x", kind: "enters_above", series: "rsi_7", level: 70, interval: "1m", symbols: ["AAPL"], provisional: true, builtin: false } as Rule;
    expect(summary(rule)).toBe("rsi_7 enters_above 70 · 1m · AAPL · provisional");
  });
});
