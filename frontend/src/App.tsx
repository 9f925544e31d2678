import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { AuthError, fetchCandles, fetchMeta, fetchSignals, fetchSymbols, subscribeLive } from "./api";
import { getToken, setToken } from "./auth";
import { Chart } from "./Chart";
import { ComparePicker } from "./ComparePicker";
import { ErrorBoundary } from "./ErrorBoundary";
import { candlesCsv, download } from "./csv";
import { linkTo, readLink } from "./links";
import { mergeCandles } from "./mapping";
import { loadPrefs, savePrefs, withMeta, type Prefs } from "./prefs";
import { RulesEditor } from "./RulesEditor";
import { SCALE_CHOICES, effectiveScale, type ScaleChoice } from "./scale";
import { offersExtended, visibleCandles } from "./sessions";
import { mergeSignals } from "./signals";
import { SignalsPanel, useRecentSignals } from "./SignalsPanel";
import { SymbolPicker } from "./SymbolPicker";
import { browserZone, resolveZone, type ZoneChoice } from "./timezones";
import type { ApiCandle, Meta, Signal, SymbolInfo } from "./types";
import { useCompare } from "./useCompare";
import { Watchlist } from "./Watchlist";

type Tab = "watchlist" | "signals" | "rules";
const TABS: { tab: Tab; label: string }[] = [
  { tab: "watchlist", label: "Watchlist" },
  { tab: "signals", label: "Signals" },
  { tab: "rules", label: "Rules" },
];

type Status =
  | { kind: "loading" }
  | { kind: "error"; message: string }
  | { kind: "ready" }
  | { kind: "token"; message: string }; // the worker wants a token

function failed(e: Error): Status {
  return e instanceof AuthError ? { kind: "token", message: e.message } : { kind: "error", message: e.message };
}

export function App() {
  // A deep link (?symbol=&interval=) wins over the choice saved on this browser.
  const [prefs, setPrefs] = useState<Prefs>(() => ({ ...loadPrefs(), ...readLink(window.location.search) }));
  const [meta, setMeta] = useState<Meta | null>(null);
  const [symbols, setSymbols] = useState<SymbolInfo[]>([]);
  const [symbolsError, setSymbolsError] = useState<string | null>(null);
  const [candles, setCandles] = useState<ApiCandle[]>([]);
  const [status, setStatus] = useState<Status>({ kind: "loading" });
  const [reload, setReload] = useState(0);
  const [chartSignals, setChartSignals] = useState<Signal[]>([]);
  const [tab, setTab] = useState<Tab>("watchlist");
  const recent = useRecentSignals(reload);
  const older = useRef({ loading: false, exhausted: false });

  useEffect(() => savePrefs(prefs), [prefs]);
  // The address follows the chart, so it can be bookmarked or shared.
  useEffect(() => {
    const { pathname, search, hash } = window.location;
    const next = linkTo(search, prefs.symbol, prefs.interval, prefs.timezone);
    if (next !== search) window.history.replaceState(null, "", pathname + next + hash);
  }, [prefs.symbol, prefs.interval, prefs.timezone]);
  useEffect(() => {
    document.documentElement.dataset.theme = prefs.theme;
  }, [prefs.theme]);

  // What the server computes (intervals, indicators): once; it fixes the toolbar and the panes.
  useEffect(() => {
    let cancelled = false;
    fetchMeta()
      .then((m) => {
        if (cancelled) return;
        setMeta(m);
        setPrefs((p) => withMeta(p, m.intervals, m.indicators));
      })
      .catch((e: Error) => !cancelled && setStatus(failed(e)));
    return () => {
      cancelled = true;
    };
  }, [reload]);

  // Symbols with their last prices: on load and every 5 s (the watchlist's prices; new
  // symbols appear as sources start).
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
        .catch((e: Error) => {
          if (cancelled) return;
          if (e instanceof AuthError) setStatus(failed(e));
          else setSymbolsError(e.message);
        });
    load();
    const timer = setInterval(load, 5_000);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [reload]);

  const { symbol, interval } = prefs;

  // History, then live updates for the chosen symbol and interval.
  useEffect(() => {
    if (!symbol || !meta) return;
    const abort = new AbortController();
    let stop: (() => void) | undefined;
    older.current = { loading: false, exhausted: false };
    setStatus({ kind: "loading" });
    setCandles([]);
    setChartSignals([]);
    const addSignals = (list: Signal[]) => setChartSignals((current) => mergeSignals(current, list, 2000));
    const loadSignals = () =>
      fetchSignals({ symbol, interval, limit: 1000 }, abort.signal)
        .then(addSignals)
        .catch(() => undefined); // markers are extra: the chart goes on without them
    fetchCandles(symbol, interval, {}, abort.signal)
      .then((list) => {
        // Answered just as the chart changed: its effect is cleaned up, nothing to subscribe.
        if (abort.signal.aborted) return;
        setCandles(list);
        setStatus({ kind: "ready" });
        void loadSignals();
        const merge = (list: ApiCandle[]) => setCandles((current) => mergeCandles(current, list));
        // After a dropped connection, the latest candles and signals again: changes made
        // meanwhile were not pushed.
        const catchUp = () => {
          void loadSignals();
          return fetchCandles(symbol, interval, {}, abort.signal).then(merge).catch(() => undefined);
        };
        stop = subscribeLive(symbol, interval, (c) => merge([c]), catchUp, (s) => addSignals([s]));
      })
      .catch((e: Error) => {
        if (!abort.signal.aborted) setStatus(failed(e));
      });
    return () => {
      abort.abort();
      stop?.();
    };
  }, [symbol, interval, reload, meta]);

  // Another symbol drawn over the chart as a percentage line, over the chart's span (useCompare.ts).
  const comparison = useCompare({
    interval,
    reload,
    ready: meta !== null,
    mainFirst: candles.length ? candles[0].t : undefined,
    onAuthError: (e) => setStatus(failed(e)),
  });

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

  // Extended hours: offered when the data has pre/post candles or the server counts them;
  // with the toggle off they are left out of the chart (candles, indicators, markers, CSV).
  const offersToggle = offersExtended(meta, candles);
  const withExtended = prefs.extended || !offersToggle; // the chart's and the comparison's
  const shownCandles = useMemo(() => visibleCandles(candles, withExtended), [candles, withExtended]);
  const zone = resolveZone(prefs.timezone, meta?.timezone);
  const exchangeZone = resolveZone("exchange", meta?.timezone);
  const comparing = comparison.symbol !== null;
  const scale = effectiveScale(prefs.scale, comparing);
  const compare = useMemo(
    () => (comparison.symbol ? { symbol: comparison.symbol, candles: visibleCandles(comparison.candles, withExtended) } : null),
    [comparison.symbol, comparison.candles, withExtended],
  );
  const zoneNames: Record<ZoneChoice, string> = {
    exchange: `Exchange (${exchangeZone})`,
    local: `Local (${browserZone()})`,
    utc: "UTC",
  };

  return (
    <div className="app">
      <header className="toolbar">
        <strong className="brand">stockapp</strong>
        <SymbolPicker symbols={symbols} value={symbol} onChange={(s) => update({ symbol: s })} />
        <div className="intervals" role="group" aria-label="Interval">
          {(meta?.intervals ?? []).map((i) => (
            <button key={i} data-testid={`interval-${i}`} className={i === interval ? "active" : ""} onClick={() => update({ interval: i })}>
              {i}
            </button>
          ))}
        </div>
        <div className="toggles">
          {[{ key: "volume", label: "Volume" }, ...(meta?.indicators ?? [])].map(({ key, label }) => (
            <label key={key}>
              <input
                type="checkbox"
                data-testid={`toggle-${key}`}
                checked={prefs.shown[key] ?? false}
                onChange={(e) => update({ shown: { ...prefs.shown, [key]: e.target.checked } })}
              />
              {label}
            </label>
          ))}
        </div>
        <div className="view">
          {offersToggle && (
            <label title="Pre-market and after-hours candles, on a shaded band">
              <input type="checkbox" data-testid="toggle-extended" checked={prefs.extended} onChange={(e) => update({ extended: e.target.checked })} />
              Extended hours
            </label>
          )}
          <select
            data-testid="timezone"
            aria-label="Time zone"
            title={`Times shown in ${zone}`}
            value={prefs.timezone}
            onChange={(e) => update({ timezone: e.target.value as ZoneChoice })}
          >
            {(Object.keys(zoneNames) as ZoneChoice[]).map((z) => (
              <option key={z} value={z}>
                {zoneNames[z]}
              </option>
            ))}
          </select>
          <select
            data-testid="price-scale"
            aria-label="Price scale"
            title={comparing ? "Percentage while comparing" : "Price scale"}
            disabled={comparing}
            value={scale}
            onChange={(e) => update({ scale: e.target.value as ScaleChoice })}
          >
            {SCALE_CHOICES.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
          <ComparePicker symbols={symbols} value={comparison.symbol} error={comparison.error} onChange={comparison.choose} />
        </div>
        {meta?.exchange && (
          <span
            className="calendar"
            data-testid="calendar"
            title={
              meta.always_open
                ? "Candles run on a 24-hour clock: no trading sessions, holidays or early closes"
                : `Candles are cut from ${meta.exchange}'s ${meta.session_hours} sessions (${meta.timezone})`
            }
          >
            {meta.always_open ? "Always open" : `${meta.exchange} · ${meta.session_now}`}
          </span>
        )}
        <button
          className="csv"
          data-testid="csv"
          disabled={!symbol || candles.length === 0}
          title="The candles loaded in the chart and the indicators shown, as CSV"
          onClick={() => symbol && download(`${symbol}-${interval}.csv`, candlesCsv(shownCandles, meta?.indicators ?? [], prefs.shown))}
        >
          CSV
        </button>
        <button className="theme" data-testid="theme" onClick={() => update({ theme: prefs.theme === "dark" ? "light" : "dark" })}>
          {prefs.theme === "dark" ? "Light" : "Dark"} theme
        </button>
      </header>
      <div className="body">
        <main>
          {symbolsError && <div className="message error">Cannot list symbols: {symbolsError}</div>}
          {!symbolsError && symbols.length === 0 && status.kind !== "token" && (
            <div className="message" data-testid="empty">
              No symbols yet. Start a source: <code>stockapp produce</code>
            </div>
          )}
          {status.kind === "loading" && symbol && <div className="message" data-testid="loading">Loading {symbol}…</div>}
          {status.kind === "token" && (
            <form
              className="message"
              data-testid="token-form"
              onSubmit={(e) => {
                e.preventDefault();
                const input = e.currentTarget.elements.namedItem("token") as HTMLInputElement;
                setToken(input.value);
                setStatus({ kind: "loading" });
                setReload((n) => n + 1);
              }}
            >
              {getToken() ? "The token was not accepted. " : "This server needs an API token. "}
              <input name="token" type="password" data-testid="token" autoComplete="current-password" aria-label="API token" />{" "}
              <button type="submit" data-testid="token-submit">
                Use token
              </button>
            </form>
          )}
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
          <ErrorBoundary name="chart" resetKey={`${symbol}|${interval}|${reload}`}>
            <Chart
              candles={shownCandles}
              indicators={meta?.indicators ?? []}
              shown={prefs.shown}
              theme={prefs.theme}
              signals={chartSignals}
              onScrolledToStart={loadOlder}
              zone={zone}
              exchangeZone={exchangeZone}
              daily={/d$/.test(interval)}
              showSession={!meta?.always_open}
              scale={scale}
              compare={compare}
            />
          </ErrorBoundary>
        </main>
        <aside className="sidebar">
          <div className="tabs" role="tablist">
            {TABS.map(({ tab: t, label }) => (
              <button key={t} role="tab" data-testid={`tab-${t}`} className={t === tab ? "active" : ""} aria-selected={t === tab} onClick={() => setTab(t)}>
                {label}
              </button>
            ))}
          </div>
          <ErrorBoundary name={`${tab} panel`} resetKey={`${tab}|${reload}`}>
            {tab === "watchlist" && (
              <Watchlist
                symbols={symbols}
                signals={recent.signals}
                intervals={meta?.intervals ?? []}
                current={symbol ?? ""}
                onOpen={(s) => update({ symbol: s })}
              />
            )}
            {tab === "signals" && (
              <SignalsPanel
                signals={recent.signals}
                error={recent.error}
                onOpen={(s, i) => update({ symbol: s, ...(meta?.intervals.includes(i) ? { interval: i } : {}) })}
              />
            )}
            {tab === "rules" && meta && <RulesEditor indicators={meta.indicators} intervals={meta.intervals} />}
          </ErrorBoundary>
        </aside>
      </div>
    </div>
  );
}
