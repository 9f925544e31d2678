import { afterEach, describe, expect, it, vi } from "vitest";

import { fetchCandleSpan, fetchSymbols, MAX_PAGE, SYMBOL_PAGES } from "./api";

function respond(pages: Record<string, { symbols: { symbol: string }[]; next: string | null }>) {
  const asked: string[] = [];
  vi.stubGlobal("fetch", async (path: string) => {
    asked.push(path);
    return new Response(JSON.stringify(pages[path]), { status: 200 });
  });
  return asked;
}

afterEach(() => vi.unstubAllGlobals());

describe("fetchSymbols", () => {
  it("follows the pages until the last", async () => {
    const asked = respond({
      "/api/symbols": { symbols: [{ symbol: "A" }, { symbol: "B" }], next: "B" },
      "/api/symbols?after=B": { symbols: [{ symbol: "C" }], next: null },
    });
    const symbols = await fetchSymbols();
    expect(symbols.map((s) => s.symbol)).toEqual(["A", "B", "C"]);
    expect(asked).toEqual(["/api/symbols", "/api/symbols?after=B"]);
  });

  it("stops after SYMBOL_PAGES pages", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (path: string) => {
      asked.push(path);
      const n = asked.length;
      return new Response(JSON.stringify({ symbols: [{ symbol: `S${n}` }], next: `S${n}` }));
    });
    expect((await fetchSymbols()).length).toBe(SYMBOL_PAGES);
    expect(asked.length).toBe(SYMBOL_PAGES);
  });
});

describe("fetchCandleSpan", () => {
  const candles = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ t: from + i }));

  it("asks for the span from its start, one page when it is enough", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (path: string) => {
      asked.push(path);
      return new Response(JSON.stringify({ candles: candles(100, 110) }));
    });
    const list = await fetchCandleSpan("XA", "5m", 100, undefined);
    expect(list.map((c) => c.t)).toEqual(candles(100, 110).map((c) => c.t));
    expect(asked).toEqual(["/api/candles/XA?interval=5m&limit=5000&start=100"]);
  });

  it("pages back from the end until the start when the span holds more than a page", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (path: string) => {
      asked.push(path);
      const q = new URL(path, "http://x").searchParams;
      const start = Number(q.get("start"));
      const end = q.has("end") ? Number(q.get("end")) : 20_000;
      // The latest MAX_PAGE of [start, end).
      return new Response(JSON.stringify({ candles: candles(Math.max(start, end - MAX_PAGE), end) }));
    });
    const list = await fetchCandleSpan("XA", "1m", 9_000, 20_000);
    expect(list.length).toBe(11_000);
    expect(list[0].t).toBe(9_000);
    expect(list.every((c, i) => i === 0 || c.t === list[i - 1].t + 1)).toBe(true);
    expect(asked.map((p) => new URL(p, "http://x").searchParams.get("end"))).toEqual(["20000", "15000", "10000"]);
  });
});
