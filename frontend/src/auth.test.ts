import { describe, expect, it } from "vitest";
import { authHeaders, getAdminToken, getToken, liveUrl, setAdminToken, setToken, writeHeaders } from "./auth";

function memory() {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

describe("auth", () => {
  it("keeps a trimmed token, and forgets an empty one", () => {
    const store = memory();
    setToken("  abc  ", store);
    expect(getToken(store)).toBe("abc");
    setToken("", store);
    expect(getToken(store)).toBeNull();
  });

  it("sends a bearer header only with a token", () => {
    expect(authHeaders("abc")).toEqual({ Authorization: "Bearer abc" });
    expect(authHeaders(null)).toEqual({});
  });

  it("adds a ticket to the live URL when a token is set", async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const fetcher = (async (path: string, init?: RequestInit) => {
      calls.push([path, init]);
      return new Response(JSON.stringify({ ticket: "123.ab+c", expires_in: 30 }), { status: 200 });
    }) as typeof fetch;
    const base = "ws://h/api/live/AAPL?interval=1m";
    setToken(null);
    expect(await liveUrl(base, fetcher)).toBe(base);
    expect(calls).toEqual([]);
    setToken("abc");
    expect(await liveUrl(base, fetcher)).toBe(`${base}&ticket=123.ab%2Bc`);
    expect(calls[0][0]).toBe("/api/ws-ticket");
    expect(calls[0][1]?.headers).toEqual({ Authorization: "Bearer abc" });
    // A socket URL without a query of its own (the signals feed) gets one.
    expect(await liveUrl("ws://h/api/signals/live", fetcher)).toBe("ws://h/api/signals/live?ticket=123.ab%2Bc");
    setToken(null);
  });

  it("writes with the admin token when one was given, else with the API token", () => {
    const store = memory();
    setToken("viewer-token", store);
    expect(writeHeaders(store)).toEqual({ Authorization: "Bearer viewer-token" });
    setAdminToken("  admin-token ", store);
    expect(getAdminToken(store)).toBe("admin-token");
    expect(getToken(store)).toBe("viewer-token"); // kept apart: reads go on with the viewers' token
    expect(writeHeaders(store)).toEqual({ Authorization: "Bearer admin-token" });
    setAdminToken("", store);
    expect(getAdminToken(store)).toBeNull();
    expect(writeHeaders(store)).toEqual({ Authorization: "Bearer viewer-token" });
  });
});
