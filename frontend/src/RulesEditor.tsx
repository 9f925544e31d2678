/** The signal rules: built-in and users', a user rule deleted, a new one created from its JSON
 * form (docs/signals.md) with the server's validation message when it is refused. Writing
 * needs the admin token (STOCKAPP_ADMIN_TOKEN) where the server sets one: it is typed in here
 * and kept for the tab, like the API token. */

import { useCallback, useEffect, useState } from "react";
import { createRule, deleteRule, fetchRules } from "./api";
import { getAdminToken, setAdminToken } from "./auth";
import { exampleRule, ruleSeries, summary } from "./rules";
import type { IndicatorInfo, Rule } from "./types";

/** ``indicators`` and ``intervals``: the server's (/api/meta), for the example and the list of
 * series a rule may name. */
export function RulesEditor({ indicators, intervals }: { indicators: IndicatorInfo[]; intervals: string[] }) {
  const [rules, setRules] = useState<Rule[]>([]);
  const [text, setText] = useState(() => exampleRule(indicators, intervals[0] ?? "1m"));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [admin, setAdmin] = useState(() => getAdminToken() !== null);

  const load = useCallback(() => {
    fetchRules()
      .then(setRules)
      .catch((e: Error) => setError(e.message));
  }, []);
  useEffect(load, [load]);

  const create = async () => {
    setError(null);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setError(`not JSON: ${(e as Error).message}`);
      return;
    }
    setBusy(true);
    try {
      await createRule(body);
      load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const remove = async (name: string) => {
    setError(null);
    try {
      await deleteRule(name);
      load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <section className="panel rules" data-testid="rules-panel">
      {admin ? (
        <div className="admin-token" data-testid="admin-token-set">
          Writing with the admin token{" "}
          <button
            data-testid="admin-token-forget"
            onClick={() => {
              setAdminToken(null);
              setAdmin(false);
            }}
          >
            Forget
          </button>
        </div>
      ) : (
        <form
          className="admin-token"
          data-testid="admin-token-form"
          onSubmit={(e) => {
            e.preventDefault();
            const input = e.currentTarget.elements.namedItem("admin-token") as HTMLInputElement;
            setAdminToken(input.value);
            setAdmin(getAdminToken() !== null);
            setError(null);
          }}
        >
          <input
            name="admin-token"
            type="password"
            data-testid="admin-token"
            autoComplete="off"
            placeholder="Admin token (to create and delete rules)"
            aria-label="Admin token"
          />{" "}
          <button type="submit" data-testid="admin-token-submit">
            Use
          </button>
        </form>
      )}
      <textarea data-testid="rule-json" value={text} onChange={(e) => setText(e.target.value)} rows={5} aria-label="New rule (JSON)" spellCheck={false} />
      <div className="rule-series" data-testid="rule-series">
        Series: {ruleSeries(indicators).join(", ")}
      </div>
      <button data-testid="rule-create" disabled={busy} onClick={create}>
        Create rule
      </button>
      {error && (
        <div className="panel-error" data-testid="rule-error">
          {error}
        </div>
      )}
      <ul>
        {rules.map((r) => (
          <li key={r.name} data-testid="rule-row" data-rule={r.name}>
            <strong>{r.name}</strong>
            <span className="rule">{summary(r)}</span>
            {r.builtin ? (
              <span className="builtin">built-in</span>
            ) : (
              <button data-testid={`rule-delete-${r.name}`} onClick={() => remove(r.name)}>
                Delete
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
