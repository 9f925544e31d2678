import { act, create, type ReactTestRenderer } from "react-test-renderer";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorBoundary } from "./ErrorBoundary";
import { describeValues } from "./signals";
import type { Signal } from "./types";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** What the signals panel shows for a signal: throws on a value that is not a number. */
function Values({ signal }: { signal: Signal }) {
  return <span>{describeValues(signal.values)}</span>;
}

const good = { values: { sma_20: 231.5 } } as unknown as Signal;
const bad = { values: { sma_20: "not a number" } } as unknown as Signal;

function Page({ signal, resetKey }: { signal: Signal; resetKey: string }) {
  return (
    <div>
      <header>toolbar</header>
      <ErrorBoundary name="signals panel" resetKey={resetKey}>
        <Values signal={signal} />
      </ErrorBoundary>
    </div>
  );
}

function text(renderer: ReactTestRenderer): string {
  const flat = (node: unknown): string =>
    node === null ? "" : typeof node === "string" ? node : Array.isArray(node) ? node.map(flat).join("") : flat((node as { children: unknown }).children ?? null);
  return flat(renderer.toJSON());
}

describe("ErrorBoundary", () => {
  beforeEach(() => {
    // React reports the caught error on the console; the test looks at the page instead.
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it("keeps the page when a part throws, shows the error in place, and recovers on new data", () => {
    let renderer!: ReactTestRenderer;
    act(() => {
      renderer = create(<Page signal={good} resetKey="a" />);
    });
    expect(text(renderer)).toContain("sma_20 231.5");

    act(() => renderer.update(<Page signal={bad} resetKey="a" />));
    const shown = text(renderer);
    expect(shown).toContain("toolbar"); // the rest of the page is still there
    expect(shown).toContain("The signals panel failed:");
    expect(renderer.root.findByProps({ role: "alert" }).props["data-part"]).toBe("signals panel");

    act(() => renderer.update(<Page signal={good} resetKey="b" />));
    expect(text(renderer)).toContain("sma_20 231.5");
    expect(text(renderer)).not.toContain("failed");
  });

  it("tries the part again on Retry", () => {
    let renderer!: ReactTestRenderer;
    act(() => {
      renderer = create(<Page signal={bad} resetKey="a" />);
    });
    expect(text(renderer)).toContain("failed");
    act(() => renderer.update(<Page signal={good} resetKey="a" />));
    expect(text(renderer)).toContain("failed"); // same key: still the error, until Retry
    act(() => renderer.root.findByType("button").props.onClick());
    expect(text(renderer)).toContain("sma_20 231.5");
  });
});
