/** The toolbar's comparison: type a symbol (the known ones are suggested), Enter draws it over
 * the chart as a percentage line; × clears it. A malformed or unknown symbol shows an error. */

import { useState } from "react";
import { SYMBOL } from "./links";
import type { SymbolInfo } from "./types";

interface Props {
  symbols: SymbolInfo[];
  value: string | null; // the symbol compared
  error: string | null; // why the last one could not be compared
  onChange: (symbol: string | null) => void;
}

export function ComparePicker({ symbols, value, error, onChange }: Props) {
  const [text, setText] = useState("");
  const [invalid, setInvalid] = useState<string | null>(null);
  const shownError = invalid ?? error;
  return (
    <form
      className="compare"
      onSubmit={(e) => {
        e.preventDefault();
        const symbol = text.trim().toUpperCase();
        if (!symbol) return;
        if (!SYMBOL.test(symbol)) {
          setInvalid(`not a symbol: ${symbol}`);
          return;
        }
        setInvalid(null);
        setText("");
        onChange(symbol);
      }}
    >
      <input
        data-testid="compare"
        list="compare-symbols"
        placeholder="Compare…"
        aria-label="Compare with symbol"
        value={text}
        onChange={(e) => setText(e.target.value)}
      />
      <datalist id="compare-symbols">
        {symbols.slice(0, 200).map((s) => (
          <option key={s.symbol} value={s.symbol} />
        ))}
      </datalist>
      {value && (
        <span className="compare-current" data-testid="compare-current">
          vs {value}
          <button type="button" data-testid="compare-clear" title="Stop comparing" aria-label="Stop comparing" onClick={() => onChange(null)}>
            ×
          </button>
        </span>
      )}
      {shownError && (
        <span className="compare-error" data-testid="compare-error" role="alert" title={shownError}>
          {shownError}
        </span>
      )}
    </form>
  );
}
