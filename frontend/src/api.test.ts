import { afterEach, describe, expect, it, vi } from "vitest";

import { fetchSymbols, SYMBOL_PAGES } from "./api";

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
