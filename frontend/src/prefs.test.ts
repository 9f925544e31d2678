import { describe, expect, it } from "vitest";
import { DEFAULT_PREFS, loadPrefs, savePrefs, withMeta } from "./prefs";
import type { IndicatorInfo } from "./types";

function memory() {
  const data = new Map<string, string>();
  return { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v) };
}

const info = (key: string, kind: string, pane = "price"): IndicatorInfo => ({ key, kind, params: [], label: key, pane, outputs: [key] });
const INDICATORS = [info("sma_20", "sma"), info("sma_50", "sma"), info("bb_20_2", "bb"), info("rsi_14", "rsi", "rsi"), info("vwap", "vwap")];

describe("prefs", () => {
  it("round-trips", () => {
    const storage = memory();
    savePrefs({ ...DEFAULT_PREFS, interval: "5m", shown: { volume: false, rsi_14: false } }, storage);
    const loaded = loadPrefs(storage);
    expect(loaded.interval).toBe("5m");
    expect(loaded.shown).toEqual({ volume: false, rsi_14: false });
  });

  it("falls back to defaults on garbage", () => {
    const storage = memory();
    storage.setItem("stockapp.prefs.v1", "{not json");
    expect(loadPrefs(storage)).toEqual(DEFAULT_PREFS);
  });

  it("remembers extended hours, the time zone and the price scale; drops unknown values", () => {
    const storage = memory();
    savePrefs({ ...DEFAULT_PREFS, extended: false, timezone: "utc", scale: "log" }, storage);
    expect(loadPrefs(storage)).toMatchObject({ extended: false, timezone: "utc", scale: "log" });
    storage.setItem("stockapp.prefs.v1", JSON.stringify({ interval: "5m", extended: "no", timezone: "Mars/Base", scale: "linear" }));
    expect(loadPrefs(storage)).toMatchObject({ interval: "5m", extended: true, timezone: "exchange", scale: "normal" });
  });

  it("fills in the server's indicators, keeping saved choices", () => {
    const prefs = withMeta({ ...DEFAULT_PREFS, shown: { volume: true, rsi_14: false, gone_1: true } }, ["1m", "5m"], INDICATORS);
    expect(prefs.shown).toEqual({ volume: true, sma_20: true, sma_50: false, bb_20_2: true, rsi_14: false, vwap: false });
  });

  it("falls back to the first interval the server offers", () => {
    expect(withMeta({ ...DEFAULT_PREFS, interval: "1m" }, ["5m", "1h"], INDICATORS).interval).toBe("5m");
    expect(withMeta({ ...DEFAULT_PREFS, interval: "1h" }, ["5m", "1h"], INDICATORS).interval).toBe("1h");
  });
});
