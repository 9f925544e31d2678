/** The extended-hours band: a series primitive drawn below everything in the price pane, a
 * translucent rectangle over each run of pre-market or after-hours candles (src/sessions.ts
 * makes the runs), full height, edge to edge between the bars. lightweight-charts wiring only. */

import type { IChartApi, IPrimitivePaneRenderer, IPrimitivePaneView, ISeriesPrimitive, SeriesAttachedParameter, Time } from "lightweight-charts";
import type { Span } from "./sessions";

type Target = Parameters<IPrimitivePaneRenderer["draw"]>[0];
interface Band {
  x1: number;
  x2: number;
  color: string;
}

class ShadeRenderer implements IPrimitivePaneRenderer {
  constructor(private readonly bands: Band[]) {}
  draw(): void {}
  drawBackground(target: Target): void {
    target.useBitmapCoordinateSpace(({ context, bitmapSize, horizontalPixelRatio }) => {
      for (const b of this.bands) {
        const x1 = Math.round(b.x1 * horizontalPixelRatio);
        const x2 = Math.round(b.x2 * horizontalPixelRatio);
        if (x2 <= 0 || x1 >= bitmapSize.width) continue;
        context.fillStyle = b.color;
        context.fillRect(x1, 0, x2 - x1, bitmapSize.height);
      }
    });
  }
}

class ShadeView implements IPrimitivePaneView {
  bands: Band[] = [];
  zOrder() {
    return "bottom" as const;
  }
  renderer() {
    return new ShadeRenderer(this.bands);
  }
}

export class SessionShade implements ISeriesPrimitive<Time> {
  private chart: IChartApi | null = null;
  private requestUpdate: (() => void) | null = null;
  private spans: Span[] = [];
  private readonly view = new ShadeView();
  constructor(private colors: { pre: string; post: string }) {}

  attached({ chart, requestUpdate }: SeriesAttachedParameter<Time>): void {
    this.chart = chart as IChartApi;
    this.requestUpdate = requestUpdate;
  }
  detached(): void {
    this.chart = null;
    this.requestUpdate = null;
  }

  setSpans(spans: Span[]): void {
    this.spans = spans;
    this.requestUpdate?.();
  }

  /** The bands' pixels for the current scroll and zoom: from half a bar before the first
   * candle to half a bar after the last. */
  updateAllViews(): void {
    const scale = this.chart?.timeScale();
    if (!scale) return;
    const half = scale.options().barSpacing / 2;
    const bands: Band[] = [];
    for (const s of this.spans) {
      const from = scale.timeToCoordinate(s.from as Time);
      const to = scale.timeToCoordinate(s.to as Time);
      if (from === null || to === null) continue;
      bands.push({ x1: from - half, x2: to + half, color: this.colors[s.session] });
    }
    this.view.bands = bands;
  }

  paneViews(): readonly IPrimitivePaneView[] {
    return [this.view];
  }
}
