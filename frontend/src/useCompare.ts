/** The comparison: another symbol drawn over the chart as a percentage line (not remembered).
 * Its candles of the chart's interval over the chart's span, then its live updates. */

import { useCallback, useEffect, useRef, useState } from "react";
import { AuthError, fetchCandleSpan, fetchCandles, subscribeLive } from "./api";
import { mergeCandles } from "./mapping";
import { compareSpan } from "./scale";
import type { ApiCandle } from "./types";

/** The compared symbol's candles starting in [start, end) (no end: up to the latest), and its
 * last one before start: its value as of the chart's first candle when it has none then. */
async function fetchCompared(symbol: string, interval: string, start: number, end: number | undefined, signal: AbortSignal): Promise<ApiCandle[]> {
  const [before, span] = await Promise.all([
    fetchCandles(symbol, interval, { end: start, limit: 1 }, signal),
    fetchCandleSpan(symbol, interval, start, end, signal),
  ]);
  return mergeCandles(before, span);
}

interface Options {
  interval: string; // the chart's
  reload: number; // changes when the chart reloads (a retry, a token entered): fetched again
  ready: boolean; // the server's meta is in (nothing is asked for before)
  mainFirst: number | undefined; // the start of the chart's first candle (none yet: undefined)
  onAuthError: (e: AuthError) => void; // the API wants a token
}

export interface Compare {
  symbol: string | null; // the symbol compared
  candles: ApiCandle[]; // its candles, ascending
  error: string | null; // why the last one could not be compared
  choose: (symbol: string | null) => void; // compare another one (null: none)
}

/** The compared symbol's candles of the same interval over the chart's span, from the chart's
 * first candle and further back as older pages of it load (so that both lines start at the same
 * time and their percentages are from the same time), then its live updates. A symbol the API
 * refuses is dropped, with the error to show where it was chosen. */
export function useCompare({ interval, reload, ready, mainFirst, onAuthError }: Options): Compare {
  const [symbol, setSymbol] = useState<string | null>(null);
  const [candles, setCandles] = useState<ApiCandle[]>([]);
  const [error, setError] = useState<string | null>(null);
  const authError = useRef(onAuthError);
  authError.current = onAuthError;

  const key = symbol && ready ? `${symbol}|${interval}|${reload}` : null;
  // Where the compared candles fetched start (they run to the latest), for key.
  const [cover, setCover] = useState<{ key: string; from: number } | null>(null);
  const covered = cover && cover.key === key ? cover.from : null;
  useEffect(() => {
    setCandles([]);
    setCover(null);
  }, [key]);
  useEffect(() => {
    const span = compareSpan(mainFirst, covered);
    if (!symbol || !key || !span) return;
    const abort = new AbortController();
    const first = covered === null;
    if (first) setError(null);
    fetchCompared(symbol, interval, span.start, span.end, abort.signal)
      .then((list) => {
        if (abort.signal.aborted) return;
        setCandles((current) => mergeCandles(current, list));
        setCover({ key, from: span.start });
      })
      .catch((e: Error) => {
        // An older span that failed is asked for again when the chart's next page loads.
        if (abort.signal.aborted || !first) return;
        if (e instanceof AuthError) return authError.current(e);
        setError(`${symbol}: ${e.message}`);
        setSymbol(null);
      });
    return () => abort.abort();
  }, [symbol, key, interval, mainFirst, covered]);
  // Live updates once its first span is in (a symbol the API does not know is not subscribed).
  const live = covered !== null;
  useEffect(() => {
    if (!symbol || !live) return;
    const abort = new AbortController();
    const merge = (list: ApiCandle[]) => setCandles((current) => mergeCandles(current, list));
    const catchUp = () => fetchCandles(symbol, interval, {}, abort.signal).then(merge).catch(() => undefined);
    const stop = subscribeLive(symbol, interval, (c) => merge([c]), catchUp);
    return () => {
      abort.abort();
      stop();
    };
  }, [symbol, key, interval, live]);

  const choose = useCallback((next: string | null) => {
    setError(null);
    setSymbol(next);
  }, []);
  return { symbol, candles, error, choose };
}
