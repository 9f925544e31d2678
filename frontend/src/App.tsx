import { useCallback, useEffect, useRef, useState } from "react";
import { fetchCandles, fetchSymbols, subscribeLive } from "./api";
import { Chart } from "./Chart";
import { mergeCandles } from "./mapping";
import { TOGGLES, TOGGLE_LABELS, loadPrefs, savePrefs, type Prefs } from "./prefs";
import { SymbolPicker } from "./SymbolPicker";
import { INTERVALS, type ApiCandle, type SymbolInfo } from "./types";

type Status = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready" };

export function App() {
  const [prefs, setPrefs] = useState<Prefs>(() => loadPrefs());
  const [symbols, setSymbols] = useState<SymbolInfo[]>([]);
  const [symbolsError, setSymbolsError] = useState<string | null>(null);
  const [candles, setCandles] = useState<ApiCandle[]>([]);
  const [status, setStatus] = useState<Status>({ kind: "loading" });
  const [reload, setReload] = useState(0);
  const older = useRef({ loading: false, exhausted: false });

  useEffect(() => savePrefs(prefs), [prefs]);
  useEffect(() => {
    document.documentElement.dataset.theme = prefs.theme;
  }, [prefs.theme]);

  // Symbols: on load and every 30 s (new ones appear as sources start).
  useEffect(() => {
    let cancelled = false;
    const load = () =>
      fetchSymbols()
        .then((list) => {
          if (cancelled) return;
          setSymbols(list);
          setSymbolsError(null);
          setPrefs((p) => (list.length && !list.some((s) => s.symbol === p.symbol) ? { ...p, symbol: list[0].symbol } : p));
        })
        .catch((e: Error) => !cancelled && setSymbolsError(e.message));
    load();
    const timer = setInterval(load, 30_000);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [reload]);

  const { symbol, interval } = prefs;

  // History, then live updates for the chosen symbol and interval.
  useEffect(() => {
    if (!symbol) return;
    const abort = new AbortController();
    let stop: (() => void) | undefined;
    older.current = { loading: false, exhausted: false };
    setStatus({ kind: "loading" });
    setCandles([]);
    fetchCandles(symbol, interval, {}, abort.signal)
      .then((list) => {
        setCandles(list);
        setStatus({ kind: "ready" });
        stop = subscribeLive(symbol, interval, (c) => setCandles((current) => mergeCandles(current, [c])));
      })
      .catch((e: Error) => {
        if (!abort.signal.aborted) setStatus({ kind: "error", message: e.message });
      });
    return () => {
      abort.abort();
      stop?.();
    };
  }, [symbol, interval, reload]);

  const loadOlder = useCallback(() => {
    const state = older.current;
    if (!symbol || state.loading || state.exhausted || candles.length === 0) return;
    state.loading = true;
    fetchCandles(symbol, interval, { end: candles[0].t })
      .then((list) => {
        if (list.length === 0) state.exhausted = true;
        else setCandles((current) => mergeCandles(current, list));
      })
      .catch(() => undefined) // the chart keeps what it has; the next scroll tries again
      .finally(() => {
        state.loading = false;
      });
  }, [symbol, interval, candles]);

  const update = (change: Partial<Prefs>) => setPrefs((p) => ({ ...p, ...change }));

  return (
    <div className="app">
      <header className="toolbar">
        <strong className="brand">stockapp</strong>
        <SymbolPicker symbols={symbols} value={symbol} onChange={(s) => update({ symbol: s })} />
        <div className="intervals" role="group" aria-label="Interval">
          {INTERVALS.map((i) => (
            <button key={i} data-testid={`interval-${i}`} className={i === interval ? "active" : ""} onClick={() => update({ interval: i })}>
              {i}
            </button>
          ))}
        </div>
        <div className="toggles">
          {TOGGLES.map((t) => (
            <label key={t}>
              <input
                type="checkbox"
                data-testid={`toggle-${t}`}
                checked={prefs.shown[t]}
                onChange={(e) => update({ shown: { ...prefs.shown, [t]: e.target.checked } })}
              />
              {TOGGLE_LABELS[t]}
            </label>
          ))}
        </div>
        <button className="theme" data-testid="theme" onClick={() => update({ theme: prefs.theme === "dark" ? "light" : "dark" })}>
          {prefs.theme === "dark" ? "Light" : "Dark"} theme
        </button>
      </header>
      <main>
        {symbolsError && <div className="message error">Cannot list symbols: {symbolsError}</div>}
        {!symbolsError && symbols.length === 0 && (
          <div className="message" data-testid="empty">
            No symbols yet. Start a source: <code>stockapp produce</code>
          </div>
        )}
        {status.kind === "loading" && symbol && <div className="message" data-testid="loading">Loading {symbol}…</div>}
        {status.kind === "error" && (
          <div className="message error" data-testid="error">
            {status.message} <button onClick={() => setReload((n) => n + 1)}>Retry</button>
          </div>
        )}
        {status.kind === "ready" && candles.length === 0 && (
          <div className="message" data-testid="empty">
            No {interval} candles for {symbol} yet.
          </div>
        )}
        <Chart candles={candles} shown={prefs.shown} theme={prefs.theme} onScrolledToStart={loadOlder} />
      </main>
    </div>
  );
}
