import { useMemo, useState } from "react";
import { formatValue } from "./mapping";
import type { SymbolInfo } from "./types";

interface Props {
  symbols: SymbolInfo[];
  value: string | null;
  onChange: (symbol: string) => void;
}

/** A search box over the known symbols; Enter picks the first match. */
export function SymbolPicker({ symbols, value, onChange }: Props) {
  const [query, setQuery] = useState("");
  const [open, setOpen] = useState(false);
  const matches = useMemo(() => {
    const q = query.trim().toUpperCase();
    return symbols.filter((s) => s.symbol.includes(q)).slice(0, 50);
  }, [symbols, query]);
  const pick = (symbol: string) => {
    onChange(symbol);
    setQuery("");
    setOpen(false);
  };
  return (
    <div className="picker">
      <input
        data-testid="symbol-search"
        placeholder={value ?? "Symbol"}
        value={query}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onChange={(e) => {
          setQuery(e.target.value);
          setOpen(true);
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && matches.length) pick(matches[0].symbol);
          if (e.key === "Escape") setOpen(false);
        }}
      />
      <span className="current" data-testid="symbol">{value ?? "–"}</span>
      {open && matches.length > 0 && (
        <ul className="matches" role="listbox">
          {matches.map((s) => (
            <li key={s.symbol} role="option" aria-selected={s.symbol === value} onMouseDown={() => pick(s.symbol)}>
              <span>{s.symbol}</span>
              <span className="price">{formatValue(s.last_price)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
