import { describe, expect, it } from "vitest";
import { EMPTY_FORM, LEVEL, extraFields, formLosses, formToRule, kindGroup, parseSymbols, ruleText, ruleToForm, textToForm } from "./ruleform";

describe("rule form", () => {
  it("groups kinds by their fields", () => {
    expect(["crosses_below", "enters_above", "leaves_below", "breakout_up"].map(kindGroup)).toEqual(["crosses", "level", "level", "breakout"]);
  });

  it("writes a cross of two series, or of a series and a level", () => {
    const form = { ...EMPTY_FORM, name: " e2e_up ", kind: "crosses_above", left: "sma_20", right: "sma_50", symbols: "aapl, msft", interval: "5m" };
    expect(formToRule(form)).toEqual({ name: "e2e_up", kind: "crosses_above", left: "sma_20", right: "sma_50", interval: "5m", symbols: ["AAPL", "MSFT"] });
    expect(formToRule({ ...form, left: "close", right: LEVEL, level: "500" })).toMatchObject({ left: "close", right: 500 });
  });

  it("writes only the kind's fields", () => {
    const form = { ...EMPTY_FORM, name: "hot", kind: "enters_above", series: "rsi_14", level: "70", provisional: true };
    expect(formToRule(form)).toEqual({ name: "hot", kind: "enters_above", series: "rsi_14", level: 70, interval: "1m", symbols: "*", provisional: true });
    expect(formToRule({ ...form, kind: "breakout_down", lookback: "20", provisional: false })).toEqual({
      name: "hot",
      kind: "breakout_down",
      lookback: 20,
      interval: "1m",
      symbols: "*",
    });
  });

  it("leaves the API to name a field that is empty or not a number", () => {
    expect(formToRule({ ...EMPTY_FORM, kind: "enters_below", level: "" })).not.toHaveProperty("level");
    expect(formToRule({ ...EMPTY_FORM, kind: "enters_below", level: "abc" })).toMatchObject({ level: "abc" });
  });

  it("reads symbols: a list, or every symbol when empty", () => {
    expect(parseSymbols("")).toBe("*");
    expect(parseSymbols(" *")).toBe("*");
    expect(parseSymbols("aapl,MSFT  brk.b, aapl")).toEqual(["AAPL", "MSFT", "BRK.B"]);
  });

  it("fills the form from JSON, keeping what the JSON does not have", () => {
    const base = { ...EMPTY_FORM, lookback: "30" };
    expect(ruleToForm({ name: "x", kind: "crosses_below", left: "close", right: 42.5, interval: "1h", symbols: ["AAPL", "MSFT"] }, base)).toEqual({
      ...base,
      name: "x",
      kind: "crosses_below",
      left: "close",
      right: LEVEL,
      level: "42.5",
      interval: "1h",
      symbols: "AAPL, MSFT",
    });
    expect(ruleToForm({ kind: "enters_above", series: "rsi_7", level: 70, symbols: "*" })).toMatchObject({ series: "rsi_7", level: "70", symbols: "" });
    expect(ruleToForm([1, 2])).toBeNull();
    expect(ruleToForm("rule")).toBeNull();
  });

  it("round-trips: form -> JSON text -> form", () => {
    const forms = [
      { ...EMPTY_FORM, name: "a", kind: "crosses_above", left: "ema_12", right: "ema_26", symbols: "AAPL" },
      { ...EMPTY_FORM, name: "b", kind: "crosses_below", left: "close", right: LEVEL, level: "500", interval: "5m" },
      { ...EMPTY_FORM, name: "c", kind: "leaves_above", series: "rsi_14", level: "70", provisional: true },
      { ...EMPTY_FORM, name: "d", kind: "breakout_up", lookback: "20" },
    ];
    for (const form of forms) {
      const text = ruleText(form);
      expect(ruleText(textToForm(text, EMPTY_FORM)!)).toBe(text);
      expect(JSON.parse(text)).toEqual(formToRule(form));
    }
    expect(textToForm("{not json", EMPTY_FORM)).toBeNull();
  });

  it("names what typed JSON the form cannot show, and keeps the fields it does not know", () => {
    const typed = { name: "x", kind: "crosses_above", left: "close", right: null, interval: "1m", symbols: "AAPL", cooldown: 5 };
    const form = ruleToForm(typed)!;
    expect(formLosses(typed, form)).toEqual(["right", "symbols"]);
    expect(extraFields(typed)).toEqual({ cooldown: 5 });
    // Written from the form (a field edited): the unknown field is still there.
    expect(formToRule({ ...form, name: "y" }, extraFields(typed))).toMatchObject({ name: "y", cooldown: 5 });
    // A field of another kind is dropped: named too.
    const other = { name: "b", kind: "breakout_up", lookback: 20, level: 5, interval: "1m", symbols: "*" };
    expect(formLosses(other, ruleToForm(other)!)).toEqual(["level"]);
    // What comes out the same is not named: spaces, case, provisional: false, "*".
    const fine = { name: " a ", kind: "enters_above", series: "close", level: 1, interval: "1m", symbols: ["aapl"], provisional: false };
    expect(formLosses(fine, ruleToForm(fine)!)).toEqual([]);
    expect(formLosses({ ...fine, symbols: "*" }, ruleToForm({ ...fine, symbols: "*" })!)).toEqual([]);
    expect(formLosses("not an object", EMPTY_FORM)).toEqual([]);
    expect(extraFields(null)).toEqual({});
  });
});
