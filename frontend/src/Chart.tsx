/** The chart: lightweight-charts wiring only; the data mapping lives in mapping.ts. */

import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  LineSeries,
  type IChartApi,
  type ISeriesApi,
  type LogicalRange,
  type MouseEventParams,
  type Time,
} from "lightweight-charts";
import { useEffect, useMemo, useRef, useState } from "react";
import { DOWN, UP, formatValue, formatVolume, toBar, toLocalTime, toPoint, toVolume } from "./mapping";
import type { Toggle } from "./prefs";
import type { ApiCandle, IndicatorName } from "./types";

interface Props {
  candles: ApiCandle[];
  shown: Record<Toggle, boolean>;
  theme: "dark" | "light";
  onScrolledToStart: () => void;
}

const THEMES = {
  dark: { background: "#131722", text: "#d1d4dc", grid: "#1e222d" },
  light: { background: "#ffffff", text: "#191919", grid: "#eef0f3" },
};

/** Line overlays: which toggle shows them, their colour, and their pane (0: price). */
const LINES: { name: IndicatorName; toggle: Toggle; color: string; pane: "price" | "rsi" | "macd" }[] = [
  { name: "sma_20", toggle: "sma20", color: "#f7c948", pane: "price" },
  { name: "sma_50", toggle: "sma50", color: "#ff9800", pane: "price" },
  { name: "ema_12", toggle: "ema12", color: "#42a5f5", pane: "price" },
  { name: "ema_26", toggle: "ema26", color: "#ab47bc", pane: "price" },
  { name: "bb_upper", toggle: "bb", color: "#80cbc4", pane: "price" },
  { name: "bb_middle", toggle: "bb", color: "#4db6ac", pane: "price" },
  { name: "bb_lower", toggle: "bb", color: "#80cbc4", pane: "price" },
  { name: "vwap", toggle: "vwap", color: "#e91e63", pane: "price" },
  { name: "rsi_14", toggle: "rsi", color: "#7e57c2", pane: "rsi" },
  { name: "macd", toggle: "macd", color: "#2962ff", pane: "macd" },
  { name: "macd_signal", toggle: "macd", color: "#ff6d00", pane: "macd" },
];

interface Handles {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram"> | null;
  hist: ISeriesApi<"Histogram"> | null;
  lines: Partial<Record<IndicatorName, ISeriesApi<"Line">>>;
  loaded: ApiCandle[];
}

const shift = (t: number) => toLocalTime(t);

function histPoint(c: ApiCandle) {
  const value = c.indicators.macd_hist;
  return value === null ? { time: shift(c.t) as Time } : { time: shift(c.t) as Time, value, color: value >= 0 ? `${UP}b0` : `${DOWN}b0` };
}

function setAll(h: Handles, candles: ApiCandle[]) {
  h.candles.setData(candles.map((c) => ({ ...toBar(c, shift), time: shift(c.t) as Time })));
  h.volume?.setData(candles.map((c) => ({ ...toVolume(c, shift), time: shift(c.t) as Time })));
  h.hist?.setData(candles.map(histPoint));
  for (const [name, series] of Object.entries(h.lines) as [IndicatorName, ISeriesApi<"Line">][]) {
    // Whitespace (no value) keeps warm-up gaps aligned with the candles.
    series.setData(
      candles.map((c) => {
        const p = toPoint(c, name, shift);
        return p ? { time: p.time as Time, value: p.value } : { time: shift(c.t) as Time };
      }),
    );
  }
}

function updateOne(h: Handles, c: ApiCandle) {
  const time = shift(c.t) as Time;
  h.candles.update({ ...toBar(c, shift), time });
  h.volume?.update({ ...toVolume(c, shift), time });
  h.hist?.update(histPoint(c));
  for (const [name, series] of Object.entries(h.lines) as [IndicatorName, ISeriesApi<"Line">][]) {
    const p = toPoint(c, name, shift);
    series.update(p ? { time, value: p.value } : { time });
  }
}

export function Chart({ candles, shown, theme, onScrolledToStart }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const handles = useRef<Handles | null>(null);
  const [hovered, setHovered] = useState<ApiCandle | null>(null);
  const scrolled = useRef(onScrolledToStart);
  scrolled.current = onScrolledToStart;
  const shownKey = JSON.stringify(shown);
  const byTime = useMemo(() => new Map(candles.map((c) => [shift(c.t), c])), [candles]);
  const byTimeRef = useRef(byTime);
  byTimeRef.current = byTime;

  // (Re)build the chart when the layout changes: toggles decide which series and panes exist.
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const colors = THEMES[theme];
    const chart = createChart(el, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: colors.background },
        textColor: colors.text,
        panes: { separatorColor: colors.grid },
      },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
      timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 3 },
      crosshair: { mode: 0 },
    });
    const h: Handles = {
      chart,
      candles: chart.addSeries(CandlestickSeries, {
        upColor: UP,
        downColor: DOWN,
        borderVisible: false,
        wickUpColor: UP,
        wickDownColor: DOWN,
      }),
      volume: null,
      hist: null,
      lines: {},
      loaded: [],
    };
    if (shown.volume) {
      h.volume = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
      chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    }
    const paneIndex = { price: 0, rsi: 0, macd: 0 };
    let next = 1;
    if (shown.rsi) paneIndex.rsi = next++;
    if (shown.macd) paneIndex.macd = next++;
    for (const line of LINES) {
      if (!shown[line.toggle]) continue;
      h.lines[line.name] = chart.addSeries(
        LineSeries,
        {
          color: line.color,
          lineWidth: line.pane === "price" ? 1 : 2,
          priceLineVisible: false,
          lastValueVisible: line.pane !== "price",
          crosshairMarkerVisible: false,
        },
        paneIndex[line.pane],
      );
    }
    if (shown.rsi) {
      for (const level of [30, 70]) {
        h.lines.rsi_14?.createPriceLine({ price: level, color: "#787b86", lineStyle: 2, lineWidth: 1, axisLabelVisible: true, title: "" });
      }
    }
    if (shown.macd) {
      h.hist = chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, paneIndex.macd);
    }
    for (const pane of chart.panes().slice(1)) pane.setHeight(110);

    chart.subscribeCrosshairMove((param: MouseEventParams) => {
      setHovered(param.time === undefined ? null : byTimeRef.current.get(param.time as number) ?? null);
    });
    chart.timeScale().subscribeVisibleLogicalRangeChange((range: LogicalRange | null) => {
      if (range && range.from < 10) scrolled.current();
    });
    handles.current = h;
    return () => {
      handles.current = null;
      chart.remove();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shownKey, theme]);

  // Data: a live change touches the last candle or appends one; anything else resets the data.
  useEffect(() => {
    const h = handles.current;
    if (!h) return;
    const old = h.loaded;
    const incremental =
      old.length > 0 &&
      candles.length > 0 &&
      candles[0].t === old[0].t &&
      candles.length - old.length <= 1 &&
      candles.length >= old.length;
    if (incremental) {
      const from = Math.max(old.length - 1, 0);
      for (const c of candles.slice(from)) updateOne(h, c);
    } else {
      const added = old.length && candles.length && candles[0].t < old[0].t ? candles.findIndex((c) => c.t === old[0].t) : 0;
      const range = h.chart.timeScale().getVisibleLogicalRange();
      setAll(h, candles);
      if (added > 0 && range) {
        // Older history was prepended: keep the same candles in view.
        h.chart.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
      }
    }
    h.loaded = candles;
  }, [candles, shownKey, theme]);

  const shownCandle = hovered ?? candles[candles.length - 1];
  const last = candles[candles.length - 1];
  return (
    <div className="chart-wrap">
      <Legend candle={shownCandle} shown={shown} />
      <div
        ref={container}
        className="chart"
        data-testid="chart"
        data-bars={candles.length}
        data-last-time={last?.t ?? ""}
        data-last-close={last?.c ?? ""}
        data-last-volume={last?.v ?? ""}
        data-panes={1 + (shown.rsi ? 1 : 0) + (shown.macd ? 1 : 0)}
      />
    </div>
  );
}

function Legend({ candle, shown }: { candle: ApiCandle | undefined; shown: Record<Toggle, boolean> }) {
  if (!candle) return null;
  const up = candle.c >= candle.o;
  const values = LINES.filter((l) => shown[l.toggle]).map((l) => (
    <span key={l.name} style={{ color: l.color }}>
      {l.name} {formatValue(candle.indicators[l.name])}
    </span>
  ));
  return (
    <div className="legend" data-testid="legend">
      <span className="legend-time">{new Date(candle.t * 1000).toLocaleString()}</span>
      {!candle.closed && <span className="forming">forming</span>}
      <span className={up ? "up" : "down"}>
        O {formatValue(candle.o)} H {formatValue(candle.h)} L {formatValue(candle.l)} C {formatValue(candle.c)}
      </span>
      <span>V {formatVolume(candle.v)}</span>
      {shown.macd && <span>macd_hist {formatValue(candle.indicators.macd_hist, 3)}</span>}
      {values}
    </div>
  );
}
