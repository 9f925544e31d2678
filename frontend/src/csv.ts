/** The candles loaded in the chart and the indicators shown, as CSV (one row per candle). */

import type { ApiCandle, IndicatorInfo } from "./types";

export function candlesCsv(candles: ApiCandle[], indicators: IndicatorInfo[], shown: Record<string, boolean>): string {
  const outputs = indicators.filter((i) => shown[i.key]).flatMap((i) => i.outputs);
  const header = ["time", "open", "high", "low", "close", "volume", "closed", ...outputs];
  const rows = candles.map((c) => [
    new Date(c.t * 1000).toISOString(),
    c.o,
    c.h,
    c.l,
    c.c,
    c.v,
    c.closed,
    // An indicator still warming up has no value: an empty cell.
    ...outputs.map((name) => c.indicators[name] ?? ""),
  ]);
  return [header, ...rows].map((row) => row.join(",")).join("\n") + "\n";
}

/** Offer ``text`` as a file download named ``name``. */
export function download(name: string, text: string): void {
  const href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.download = name;
  anchor.click();
  // Revoked later: some browsers read the blob after click() returns.
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
