/** What the live WebSockets may deliver, checked before anything draws it: a message that is
 * not JSON or not of the shapes below (a value that is not a number, a missing field) is
 * dropped. The server checks the signals it relays too; this is the page's own guard. */

import type { ApiCandle, LiveMessage, Signal } from "./types";

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isNumber = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isText = (x: unknown): x is string => typeof x === "string" && x.length > 0 && x.length <= 200;
const isValues = (x: unknown): x is Record<string, number | null> =>
  isObject(x) && Object.values(x).every((v) => v === null || isNumber(v));

export function isSignal(x: unknown): x is Signal {
  return (
    isObject(x) &&
    ["key", "symbol", "interval", "rule", "kind"].every((f) => isText(x[f])) &&
    isNumber(x.start) &&
    isNumber(x.end) &&
    isValues(x.values) &&
    typeof x.provisional === "boolean"
  );
}

export function isCandle(x: unknown): x is ApiCandle {
  return (
    isObject(x) &&
    ["t", "o", "h", "l", "c", "v"].every((f) => isNumber(x[f])) &&
    typeof x.closed === "boolean" &&
    isValues(x.indicators)
  );
}

/** The message, or null for anything the page must not draw. */
export function parseLiveMessage(text: unknown): LiveMessage | null {
  if (typeof text !== "string") return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(data)) return null;
  if (data.type === "candle" && isText(data.symbol) && isText(data.interval) && isCandle(data.candle)) {
    return data as unknown as LiveMessage;
  }
  if (data.type === "signal" && isSignal(data.signal)) return data as unknown as LiveMessage;
  return null;
}
