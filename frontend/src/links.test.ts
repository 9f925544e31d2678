import { describe, expect, it } from "vitest";
import { linkTo, readLink } from "./links";

describe("deep links", () => {
  it("read a symbol and an interval from the address", () => {
    expect(readLink("?symbol=msft&interval=5m")).toEqual({ symbol: "MSFT", interval: "5m" });
    expect(readLink("?symbol=BRK.B")).toEqual({ symbol: "BRK.B" });
    expect(readLink("")).toEqual({});
  });

  it("leave out what is malformed", () => {
    expect(readLink("?symbol=<script>&interval=5 minutes")).toEqual({});
    expect(readLink("?symbol=ABCDEFGHIJKLMNOP")).toEqual({});
  });

  it("write the chart's choice, keeping other parameters", () => {
    expect(linkTo("", "AAPL", "1m")).toBe("?symbol=AAPL&interval=1m");
    expect(linkTo("?symbol=X&interval=1h&theme=light", "^GSPC", "5m")).toBe("?symbol=%5EGSPC&interval=5m&theme=light");
    expect(linkTo("?symbol=X", null, "1d")).toBe("?interval=1d");
    expect(readLink(linkTo("", "^GSPC", "15m"))).toEqual({ symbol: "^GSPC", interval: "15m" });
  });

  it("carry the time zone choice", () => {
    expect(readLink("?symbol=AAPL&interval=1m&tz=UTC")).toEqual({ symbol: "AAPL", interval: "1m", timezone: "utc" });
    expect(readLink("?tz=Europe/Berlin")).toEqual({});
    expect(linkTo("?symbol=X&interval=1m", "AAPL", "1m", "exchange")).toBe("?symbol=AAPL&interval=1m&tz=exchange");
    expect(readLink(linkTo("", "AAPL", "5m", "local"))).toEqual({ symbol: "AAPL", interval: "5m", timezone: "local" });
  });
});
