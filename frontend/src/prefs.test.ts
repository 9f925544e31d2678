import { describe, expect, it } from "vitest";
import { DEFAULT_PREFS, loadPrefs, savePrefs } from "./prefs";

function memory() {
  const data = new Map<string, string>();
  return { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v) };
}

describe("prefs", () => {
  it("round-trips and fills in toggles added later", () => {
    const storage = memory();
    savePrefs({ ...DEFAULT_PREFS, interval: "5m", shown: { ...DEFAULT_PREFS.shown, rsi: false } }, storage);
    const loaded = loadPrefs(storage);
    expect(loaded.interval).toBe("5m");
    expect(loaded.shown.rsi).toBe(false);
    expect(loaded.shown.volume).toBe(true);
  });

  it("falls back to defaults on garbage", () => {
    const storage = memory();
    storage.setItem("stockapp.prefs.v1", "{not json");
    expect(loadPrefs(storage)).toEqual(DEFAULT_PREFS);
  });
});
