/** Recent signals across symbols: stored ones, then live; filterable; a click opens the chart
 * at the signal's symbol and interval. */

import { useEffect, useState } from "react";
import { AuthError, fetchSignals, subscribeSignals } from "./api";
import { describeValues, filterSignals, isUpward, mergeSignals } from "./signals";
import type { Signal } from "./types";

const KEEP = 300;

/** Recent signals of every symbol: the stored ones, then each as it fires (reloaded after the
 * feed reconnects). Shared by the signals panel and the watchlist. The feed opens only once
 * the API answered, so a worker that wants a token is not asked before there is one (``reload``
 * changes when the token is entered). */
export function useRecentSignals(reload: number): { signals: Signal[]; error: string | null } {
  const [signals, setSignals] = useState<Signal[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    let stop: (() => void) | undefined;
    const load = () =>
      fetchSignals({ limit: 100 }).then((list) => {
        if (cancelled) return;
        setError(null);
        setSignals((current) => mergeSignals(current, list, KEEP));
      });
    load()
      .then(() => {
        if (cancelled) return;
        const reloadQuietly = () => void load().catch(() => undefined);
        stop = subscribeSignals((s) => setSignals((current) => mergeSignals(current, [s], KEEP)), reloadQuietly);
      })
      .catch((e: Error) => !cancelled && !(e instanceof AuthError) && setError(e.message));
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [reload]);
  return { signals, error };
}

export function SignalsPanel({
  signals,
  error,
  onOpen,
}: {
  signals: Signal[];
  error: string | null;
  onOpen: (symbol: string, interval: string) => void;
}) {
  const [filter, setFilter] = useState("");

  const shown = filterSignals(signals, filter);
  return (
    <section className="panel signals" data-testid="signals-panel">
      <input
        className="filter"
        data-testid="signals-filter"
        placeholder="Filter by symbol or rule"
        value={filter}
        onChange={(e) => setFilter(e.target.value)}
        aria-label="Filter signals"
      />
      {error && <div className="panel-error">Cannot load signals: {error}</div>}
      {shown.length === 0 && !error && <div className="panel-empty">No signals yet.</div>}
      <ul>
        {shown.map((s) => (
          <li
            key={s.key}
            data-testid="signal-row"
            data-symbol={s.symbol}
            data-rule={s.rule}
            className={s.provisional ? "provisional" : ""}
            title={describeValues(s.values)}
            onClick={() => onOpen(s.symbol, s.interval)}
          >
            <span className={isUpward(s.kind) ? "up" : "down"}>{isUpward(s.kind) ? "▲" : "▼"}</span>
            <strong>{s.symbol}</strong>
            <span className="rule">
              {s.rule}
              {s.provisional ? " (provisional)" : ""}
            </span>
            <span className="when">
              {s.interval} {new Date(s.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
