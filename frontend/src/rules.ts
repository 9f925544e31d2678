/** Pure helpers of the rule editor: the series a rule may name and an example rule, both from
 * the server's configured indicators (/api/meta), and a rule in one line. */

import type { IndicatorInfo, Rule } from "./types";

const CANDLE_SERIES = ["open", "high", "low", "close", "volume"];

/** What a rule's left/right/series may name on this deployment, in the server's order. */
export function ruleSeries(indicators: IndicatorInfo[]): string[] {
  return [...CANDLE_SERIES, ...indicators.flatMap((i) => i.outputs)];
}

/** A valid rule to start from: a cross of the first two moving averages configured, else
 * RSI entering 70, else a breakout (which needs no indicator). */
export function exampleRule(indicators: IndicatorInfo[], interval: string): string {
  const averages = indicators.filter((i) => i.kind === "sma" || i.kind === "ema").map((i) => i.outputs[0]);
  const rsi = indicators.find((i) => i.kind === "rsi");
  const fields =
    averages.length >= 2
      ? { name: "my_cross", kind: "crosses_above", left: averages[0], right: averages[1] }
      : rsi
        ? { name: "my_rsi", kind: "enters_above", series: rsi.outputs[0], level: 70 }
        : { name: "my_breakout", kind: "breakout_up", lookback: 20 };
  return JSON.stringify({ ...fields, interval, symbols: "*" });
}

/** "sma_20 crosses_above sma_50 · 1m · AAPL, MSFT": a rule in one line. */
export function summary(rule: Rule): string {
  const fields = ["left", "series", "lookback"].filter((f) => f in rule).map((f) => String(rule[f]));
  const rest = ["right", "level"].filter((f) => f in rule).map((f) => String(rule[f]));
  const symbols = rule.symbols === "*" ? "all symbols" : rule.symbols.join(", ");
  return `${[...fields, rule.kind, ...rest].join(" ")} · ${rule.interval} · ${symbols}${rule.provisional ? " · provisional" : ""}`;
}
