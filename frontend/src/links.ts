/** Deep links: `/?symbol=MSFT&interval=5m&tz=exchange` opens that chart, and the address bar
 * follows the chosen symbol, interval and time zone (exchange, local or utc), so it can be
 * bookmarked or shared. */

import { isZoneChoice, type ZoneChoice } from "./timezones";

export const SYMBOL = /^[A-Z0-9.\-^=]{1,15}$/; // as the API's (stockapp/web/params.py)
const INTERVAL = /^\d{1,4}[smhd]$/;

export interface Link {
  symbol?: string;
  interval?: string;
  timezone?: ZoneChoice;
}

/** What a page address asks for; anything malformed is left out (the saved choice stands). */
export function readLink(search: string): Link {
  const query = new URLSearchParams(search);
  const link: Link = {};
  const symbol = query.get("symbol")?.trim().toUpperCase();
  if (symbol && SYMBOL.test(symbol)) link.symbol = symbol;
  const interval = query.get("interval")?.trim();
  if (interval && INTERVAL.test(interval)) link.interval = interval;
  const tz = query.get("tz")?.trim().toLowerCase();
  if (isZoneChoice(tz)) link.timezone = tz;
  return link;
}

/** The query string for a chart, keeping any other parameters the address has. */
export function linkTo(search: string, symbol: string | null, interval: string, timezone?: ZoneChoice): string {
  const query = new URLSearchParams(search);
  if (symbol) query.set("symbol", symbol);
  else query.delete("symbol");
  query.set("interval", interval);
  if (timezone) query.set("tz", timezone);
  return `?${query.toString()}`;
}
