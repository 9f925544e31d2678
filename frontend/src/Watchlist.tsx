/** Every symbol at a glance: last price, change since the session open, the day's sparkline and
 * the latest signal; live (prices from the symbols poll, signals from the live feed); sortable
 * by any column; a click opens the chart. */

import { useEffect, useMemo, useState } from "react";
import { fetchCandles } from "./api";
import type { ApiCandle, Signal, SymbolInfo } from "./types";
import { change, latestBySymbol, sortRows, sparkInterval, sparkline, sparkPath, type SortKey, type WatchRow } from "./watchlist";

// Symbols whose day is loaded (two small candle requests each, every minute).
export const MAX_WATCHED = 50;
const DAY_REFRESH_MS = 60_000;

interface Day {
  open: number | null;
  dayStart: number | null; // epoch seconds: the session's 1d candle start
  candles: ApiCandle[];
}

async function loadDay(symbol: string, interval: string | null): Promise<Day> {
  const [day] = await fetchCandles(symbol, "1d", { limit: 1 });
  const candles = interval ? await fetchCandles(symbol, interval, { limit: 100 }) : [];
  return { open: day?.o ?? null, dayStart: day?.t ?? null, candles };
}

const COLUMNS: { key: SortKey; label: string }[] = [
  { key: "symbol", label: "Symbol" },
  { key: "last", label: "Last" },
  { key: "change", label: "Chg %" },
  { key: "signal", label: "Signal" },
];

export function Watchlist({
  symbols,
  signals,
  intervals,
  current,
  onOpen,
}: {
  symbols: SymbolInfo[];
  signals: Signal[];
  intervals: string[];
  current: string;
  onOpen: (symbol: string) => void;
}) {
  const [days, setDays] = useState<Record<string, Day>>({});
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: "symbol", descending: false });
  const watched = useMemo(() => symbols.slice(0, MAX_WATCHED).map((s) => s.symbol), [symbols]);
  const watchedKey = watched.join(",");
  const interval = sparkInterval(intervals);

  useEffect(() => {
    if (!intervals.includes("1d")) return;
    let cancelled = false;
    const load = () => {
      for (const symbol of watched) {
        loadDay(symbol, interval)
          .then((day) => !cancelled && setDays((d) => ({ ...d, [symbol]: day })))
          .catch(() => undefined); // that row shows the price without its day
      }
    };
    load();
    const timer = setInterval(load, DAY_REFRESH_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [watchedKey, interval, intervals.join(",")]);

  const latest = useMemo(() => latestBySymbol(signals), [signals]);
  const rows: WatchRow[] = symbols.slice(0, MAX_WATCHED).map((s) => {
    const day = days[s.symbol];
    const open = day?.open ?? null;
    return {
      symbol: s.symbol,
      last: s.last_price,
      open,
      change: change(open, s.last_price),
      spark: day ? sparkline(day.candles, day.dayStart, s.last_price) : [],
      signal: latest.get(s.symbol) ?? null,
    };
  });
  const sorted = sortRows(rows, sort.key, sort.descending);

  return (
    <section className="panel watchlist" data-testid="watchlist">
      <table>
        <thead>
          <tr>
            {COLUMNS.map(({ key, label }) => (
              <th
                key={key}
                data-testid={`sort-${key}`}
                className={sort.key === key ? "sorted" : ""}
                onClick={() => setSort((s) => ({ key, descending: s.key === key ? !s.descending : key !== "symbol" }))}
              >
                {label}
                {sort.key === key ? (sort.descending ? " ▾" : " ▴") : ""}
              </th>
            ))}
            <th>Day</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr
              key={r.symbol}
              data-testid="watch-row"
              data-symbol={r.symbol}
              data-last={r.last ?? ""}
              data-change={r.change ?? ""}
              className={r.symbol === current ? "current" : ""}
              onClick={() => onOpen(r.symbol)}
            >
              <td className="sym">{r.symbol}</td>
              <td className="num">{r.last === null ? "–" : r.last.toFixed(2)}</td>
              <td className={`num ${r.change === null ? "" : r.change >= 0 ? "up" : "down"}`}>
                {r.change === null ? "–" : `${r.change >= 0 ? "+" : ""}${r.change.toFixed(2)}`}
              </td>
              <td className="sig" title={r.signal ? `${r.signal.rule} on ${r.signal.interval}, ${new Date(r.signal.start).toLocaleString()}` : ""}>
                {r.signal ? r.signal.rule : ""}
              </td>
              <td>
                <svg width="64" height="18" className={r.change !== null && r.change < 0 ? "spark down" : "spark up"}>
                  <path d={sparkPath(r.spark, 64, 18)} />
                </svg>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {symbols.length > MAX_WATCHED && <div className="panel-empty">The first {MAX_WATCHED} symbols of {symbols.length}.</div>}
    </section>
  );
}
