import { describe, expect, it } from "vitest";
import { candlesCsv } from "./csv";
import type { ApiCandle, IndicatorInfo } from "./types";

const sma: IndicatorInfo = { key: "sma_20", kind: "sma", params: [20], label: "SMA 20", pane: "price", outputs: ["sma_20"] };
const bb: IndicatorInfo = { key: "bb_20_2", kind: "bb", params: [20, 2], label: "Bollinger 20 2", pane: "price", outputs: ["bb_upper", "bb_middle", "bb_lower"] };
const candle = (t: number, c: number, indicators: Record<string, number | null>): ApiCandle => ({ t, o: 1, h: 2, l: 0.5, c, v: 10, closed: true, indicators });

describe("CSV of the chart", () => {
  it("has a row per candle and a column per shown indicator output", () => {
    const text = candlesCsv(
      [candle(1767621600, 1.5, { sma_20: null, bb_upper: 3, bb_middle: 2, bb_lower: 1 }), candle(1767621660, 0.1 + 0.2, { sma_20: 1.25 })],
      [sma, bb],
      { volume: true, sma_20: true, bb_20_2: false },
    );
    expect(text.split("\n")).toEqual([
      "time,open,high,low,close,volume,closed,sma_20",
      "2026-01-05T14:00:00.000Z,1,2,0.5,1.5,10,true,",
      "2026-01-05T14:01:00.000Z,1,2,0.5,0.30000000000000004,10,true,1.25",
      "",
    ]);
  });
});
