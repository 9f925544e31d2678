/** The chart: lightweight-charts wiring only; the data mapping lives in mapping.ts. */

import {
  CandlestickSeries,
  ColorType,
  createChartEx,
  createSeriesMarkers,
  defaultHorzScaleBehavior,
  HistogramSeries,
  LineSeries,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LogicalRange,
  type MouseEventParams,
  type Mutable,
  type Time,
  type TimeScalePoint,
} from "lightweight-charts";
import { useEffect, useMemo, useRef, useState } from "react";
import { DOWN, UP, chartLayout, chartUpdates, formatValue, formatVolume, toBar, toPoint, toVolume, type SeriesSpec } from "./mapping";
import type { Shown } from "./prefs";
import { comparePoints, priceScaleMode, type ScaleChoice } from "./scale";
import { SessionShade } from "./SessionShade";
import { SHADE, countExtended, extendedSpans, isExtended, sessionLabel } from "./sessions";
import { describeValues, toMarkers } from "./signals";
import { TICK, fillZoneWeights, formatTime, labelZone, tickLabel, zoneAbbreviation } from "./timezones";
import type { ApiCandle, IndicatorInfo, Signal } from "./types";

interface Props {
  candles: ApiCandle[]; // the ones shown: without pre/post when extended hours are off
  indicators: IndicatorInfo[];
  shown: Shown;
  theme: "dark" | "light";
  signals: Signal[]; // of this symbol and interval: markers at their candles
  onScrolledToStart: () => void;
  zone: string; // the IANA time zone intraday labels are shown in (the chosen one)
  exchangeZone: string; // the exchange's: a daily candle's date (its trading day) is its date there
  daily: boolean; // a 1d (or longer) interval: dates without a time
  showSession: boolean; // the legend names the candle's session (not on the always-open calendar)
  scale: ScaleChoice; // the one in force (percentage while comparing)
  compare: { symbol: string; candles: ApiCandle[] } | null; // drawn as a line over the candles
}

const COMPARE_COLOR = "#00bcd4";

const THEMES = {
  dark: { background: "#131722", text: "#d1d4dc", grid: "#1e222d" },
  light: { background: "#ffffff", text: "#191919", grid: "#eef0f3" },
};

interface Handles {
  chart: IChartApi;
  shade: SessionShade; // the extended-hours bands, behind everything
  candles: ISeriesApi<"Candlestick">;
  compare: ISeriesApi<"Line">; // the compared symbol (empty when none)
  volume: ISeriesApi<"Histogram"> | null;
  lines: Record<string, ISeriesApi<"Line">>; // by indicator output
  hists: Record<string, ISeriesApi<"Histogram">>; // by indicator output (MACD's histogram)
  markers: ISeriesMarkersPluginApi<Time>;
  loaded: ApiCandle[];
}

/** The time axis's tick marks by a time zone's calendar and clock. The data stays in UTC epoch
 * seconds (the API's); only the labels are formatted in the chosen zone. lightweight-charts weighs
 * each bar by its UTC date and time (a new day at the first bar of each UTC day: 09:30 New York
 * on XNYS, so an intraday chart never showed a date). Rather than shifting the data by the
 * zone's offset (every time the chart hands back, the crosshair's, markers', the shaded bands'
 * and the compare line's, would then need shifting back, and where clocks go back an hour the
 * shifted times of a 24-hour market repeat, which the chart refuses), the default behaviour is
 * kept and only its weights are computed per bar in the zone (timezones.ts fillZoneWeights):
 * the first bar of each day in the zone is the day's tick mark, labelled with its date. The
 * weights are filled as points are added, so a change of zone rebuilds the chart. */
function zonedTimeScale(zone: string) {
  const Base = defaultHorzScaleBehavior();
  class ZonedTimeScale extends Base {
    fillWeightsForPoints(points: readonly Mutable<TimeScalePoint>[], startIndex: number): void {
      fillZoneWeights(points as Mutable<TimeScalePoint>[], startIndex, zone, (p) => this.key(p.time) as number);
    }
  }
  return new ZonedTimeScale();
}

function histPoint(c: ApiCandle, output: string) {
  const value = c.indicators[output];
  return value === null || value === undefined
    ? { time: c.t as Time }
    : { time: c.t as Time, value, color: value >= 0 ? `${UP}b0` : `${DOWN}b0` };
}

function setAll(h: Handles, candles: ApiCandle[]) {
  h.candles.setData(candles.map((c) => ({ ...toBar(c), time: c.t as Time })));
  h.volume?.setData(candles.map((c) => ({ ...toVolume(c), time: c.t as Time })));
  for (const [output, series] of Object.entries(h.hists)) series.setData(candles.map((c) => histPoint(c, output)));
  for (const [name, series] of Object.entries(h.lines)) {
    // Whitespace (no value) keeps warm-up gaps aligned with the candles.
    series.setData(
      candles.map((c) => {
        const p = toPoint(c, name);
        return p ? { time: p.time as Time, value: p.value } : { time: c.t as Time };
      }),
    );
  }
}

function updateOne(h: Handles, c: ApiCandle, historical: boolean) {
  const time = c.t as Time;
  h.candles.update({ ...toBar(c), time }, historical);
  h.volume?.update({ ...toVolume(c), time }, historical);
  for (const [output, series] of Object.entries(h.hists)) series.update(histPoint(c, output), historical);
  for (const [name, series] of Object.entries(h.lines)) {
    const p = toPoint(c, name);
    series.update(p ? { time, value: p.value } : { time }, historical);
  }
}

export function Chart({ candles, indicators, shown, theme, signals, onScrolledToStart, zone, exchangeZone, daily, showSession, scale, compare }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const handles = useRef<Handles | null>(null);
  const [hovered, setHovered] = useState<ApiCandle | null>(null);
  const scrolled = useRef(onScrolledToStart);
  scrolled.current = onScrolledToStart;
  const layout = useMemo(() => chartLayout(indicators, shown), [indicators, shown]);
  // Daily candles are dated in the exchange's zone, intraday ones in the chosen one.
  const axisZone = labelZone(zone, exchangeZone, daily);
  // What (re)builds the chart: the series and panes, and the zone its tick marks are weighed in.
  const shownKey = JSON.stringify([layout, shown.volume, axisZone]);
  // The date labels the axis drew (data-date-ticks, for the browser tests), since the build.
  const dateTicks = useRef(new Set<string>());
  const byTime = useMemo(() => new Map(candles.map((c) => [c.t, c])), [candles]);
  const byTimeRef = useRef(byTime);
  byTimeRef.current = byTime;

  // (Re)build the chart when the layout changes: toggles decide which series and panes exist.
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const colors = THEMES[theme];
    dateTicks.current = new Set();
    delete el.dataset.dateTicks;
    const chart = createChartEx(el, zonedTimeScale(axisZone), {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: colors.background },
        textColor: colors.text,
        panes: { separatorColor: colors.grid },
      },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
      timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 3 },
      crosshair: { mode: 0 },
      localization: { dateFormat: "dd MMM 'yy" }, // createChart's default
    }) as IChartApi;
    const candleSeries = chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    // Extended hours: translucent bands behind the pre/post candles.
    const shade = new SessionShade(SHADE[theme]);
    candleSeries.attachPrimitive(shade);
    const compareSeries = chart.addSeries(LineSeries, {
      color: COMPARE_COLOR,
      lineWidth: 2,
      priceLineVisible: false,
      crosshairMarkerVisible: false,
    });
    const h: Handles = {
      chart,
      shade,
      candles: candleSeries,
      compare: compareSeries,
      volume: null,
      lines: {},
      hists: {},
      markers: createSeriesMarkers(candleSeries, []),
      loaded: [],
    };
    if (shown.volume) {
      h.volume = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
      chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    }
    for (const spec of layout.series) {
      if (spec.histogram) {
        h.hists[spec.output] = chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, spec.pane);
        continue;
      }
      const line = chart.addSeries(
        LineSeries,
        {
          color: spec.color,
          lineWidth: spec.pane === 0 ? 1 : 2,
          priceLineVisible: false,
          lastValueVisible: spec.pane !== 0,
          crosshairMarkerVisible: false,
        },
        spec.pane,
      );
      if (spec.kind === "rsi") {
        for (const level of [30, 70]) {
          line.createPriceLine({ price: level, color: "#787b86", lineStyle: 2, lineWidth: 1, axisLabelVisible: true, title: "" });
        }
      }
      h.lines[spec.output] = line;
    }
    for (const pane of chart.panes().slice(1)) pane.setHeight(110);

    chart.subscribeCrosshairMove((param: MouseEventParams) => {
      setHovered(param.time === undefined ? null : (byTimeRef.current.get(param.time as number) ?? null));
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

  // Data: a live change redraws the candles it changed (the last ones, or the one before during
  // a grace period) or appends one; anything else resets the data.
  useEffect(() => {
    const h = handles.current;
    if (!h) return;
    const old = h.loaded;
    const updates = chartUpdates(old, candles);
    if (updates) {
      for (const u of updates) updateOne(h, u.candle, u.historical);
    } else {
      const added = old.length && candles.length && candles[0].t < old[0].t ? candles.findIndex((c) => c.t === old[0].t) : 0;
      const range = h.chart.timeScale().getVisibleLogicalRange();
      setAll(h, candles);
      if (added > 0 && range) {
        // Older history was prepended: keep the same candles in view.
        h.chart.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
      }
    }
    h.shade.setSpans(extendedSpans(candles));
    h.loaded = candles;
  }, [candles, shownKey, theme]);

  // Times in the zone: the axis, the crosshair's label (the data is not shifted).
  useEffect(() => {
    handles.current?.chart.applyOptions({
      localization: { timeFormatter: (time: Time) => formatTime(time as number, axisZone, daily) },
      timeScale: {
        tickMarkFormatter: (time: Time, type: number) => {
          const label = tickLabel(time as number, type, axisZone);
          const seen = dateTicks.current;
          if (type <= TICK.day && !seen.has(label) && seen.size < 100 && container.current) {
            seen.add(label);
            container.current.dataset.dateTicks = [...seen].join(",");
          }
          return label;
        },
      },
    });
  }, [axisZone, daily, shownKey, theme]);

  // The price scale: normal, logarithmic or percentage (each series from its own first
  // visible value, which is what makes a comparison read right).
  useEffect(() => {
    handles.current?.candles.priceScale().applyOptions({ mode: priceScaleMode(scale) });
  }, [scale, shownKey, theme]);

  // The compared symbol: its closes at the times the chart shows.
  const compared = useMemo(() => (compare ? comparePoints(candles, compare.candles) : []), [compare, candles]);
  useEffect(() => {
    const h = handles.current;
    if (!h) return;
    h.compare.applyOptions({ title: compare?.symbol ?? "", visible: compare !== null });
    h.compare.setData(compared.map((p) => ({ time: p.time as Time, value: p.value })));
  }, [compared, compare, shownKey, theme]);
  const compareAt = useMemo(() => new Map(compared.map((p) => [p.time, p.value])), [compared]);

  // Signals as markers at their candles (only candles the chart has: older ones come with
  // scrolling back).
  const markers = useMemo(() => {
    const times = new Set(candles.map((c) => c.t));
    // A provisional firing is about the forming candle: once it closed, only a final counts.
    const open = new Set(candles.filter((c) => !c.closed).map((c) => c.t));
    const current = signals.filter((s) => !s.provisional || open.has(s.start / 1000));
    return toMarkers(current, times, { up: UP, down: DOWN });
  }, [signals, candles]);
  useEffect(() => {
    handles.current?.markers.setMarkers(markers.map((m) => ({ ...m, time: m.time as Time })));
  }, [markers, shownKey, theme]);
  const signalsAt = useMemo(() => {
    const at = new Map<number, Signal[]>();
    for (const s of signals) at.set(s.start / 1000, [...(at.get(s.start / 1000) ?? []), s]);
    return at;
  }, [signals]);

  // A hovered candle hidden since (extended hours off) is not shown.
  const shownCandle = (hovered && byTime.get(hovered.t)) || candles[candles.length - 1];
  const last = candles[candles.length - 1];
  const extendedBars = useMemo(() => countExtended(candles), [candles]);
  return (
    <div className="chart-wrap">
      <Legend
        candle={shownCandle}
        series={layout.series}
        signals={shownCandle ? (signalsAt.get(shownCandle.t) ?? []) : []}
        zone={axisZone}
        daily={daily}
        showSession={showSession}
        compare={compare && shownCandle ? { symbol: compare.symbol, value: compareAt.get(shownCandle.t) } : null}
      />
      <div
        ref={container}
        className="chart"
        data-testid="chart"
        data-bars={candles.length}
        data-last-time={last?.t ?? ""}
        data-last-close={last?.c ?? ""}
        data-last-volume={last?.v ?? ""}
        data-panes={layout.panes}
        data-markers={markers.map((m) => m.text).join(",")}
        data-extended-bars={extendedBars}
        data-timezone={zone}
        data-price-scale={scale}
        data-compare={compare?.symbol ?? ""}
        data-compare-points={compared.length}
      />
    </div>
  );
}

interface LegendProps {
  candle: ApiCandle | undefined;
  series: SeriesSpec[];
  signals: Signal[];
  zone: string; // the exchange's for a daily candle
  daily: boolean;
  showSession: boolean;
  compare: { symbol: string; value: number | undefined } | null;
}

function Legend({ candle, series, signals, zone, daily, showSession, compare }: LegendProps) {
  if (!candle) return null;
  const up = candle.c >= candle.o;
  const values = series.map((s) => (
    <span key={s.output} style={s.histogram ? undefined : { color: s.color }}>
      {s.output} {formatValue(candle.indicators[s.output], s.pane === 0 ? 2 : 3)}
    </span>
  ));
  return (
    <div className="legend" data-testid="legend">
      <span className="legend-time" data-testid="legend-time" title={zone}>
        {formatTime(candle.t, zone, daily)}
        {daily ? "" : ` ${zoneAbbreviation(candle.t, zone)}`}
      </span>
      {showSession && candle.session && (
        <span className={`legend-session${isExtended(candle) ? " extended" : ""}`} data-testid="legend-session" data-session={candle.session}>
          {sessionLabel(candle.session)}
        </span>
      )}
      {!candle.closed && <span className="forming">forming</span>}
      <span className={up ? "up" : "down"}>
        O {formatValue(candle.o)} H {formatValue(candle.h)} L {formatValue(candle.l)} C {formatValue(candle.c)}
      </span>
      <span>V {formatVolume(candle.v)}</span>
      {values}
      {compare && (
        <span className="legend-compare" data-testid="legend-compare" style={{ color: COMPARE_COLOR }}>
          {compare.symbol} {formatValue(compare.value)}
        </span>
      )}
      {signals.map((s) => (
        <span key={s.key} className="legend-signal" data-testid="legend-signal" title={describeValues(s.values)}>
          {s.provisional ? "◌" : "◆"} {s.rule} ({describeValues(s.values)})
        </span>
      ))}
    </div>
  );
}
