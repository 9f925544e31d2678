/** The signal rules: built-in and users', a user rule deleted, a new one created with a form
 * (kind, series, level, symbols, interval, name) or, in the advanced view, its JSON form
 * (docs/signals.md), the two kept in step (src/ruleform.ts); the server's validation message
 * is shown when it is refused. Writing
 * needs the admin token (STOCKAPP_ADMIN_TOKEN) where the server sets one: it is typed in here
 * and kept for the tab, like the API token. */

import { useCallback, useEffect, useState } from "react";
import { createRule, deleteRule, fetchRules } from "./api";
import { getAdminToken, setAdminToken } from "./auth";
import { exampleRule, ruleSeries, summary } from "./rules";
import { EMPTY_FORM, LEVEL, RULE_KINDS, extraFields, formLosses, formToRule, kindGroup, ruleToForm, textToForm, type RuleForm } from "./ruleform";
import type { IndicatorInfo, Rule } from "./types";

/** ``indicators`` and ``intervals``: the server's (/api/meta), for the example and the list of
 * series a rule may name. */
export function RulesEditor({ indicators, intervals }: { indicators: IndicatorInfo[]; intervals: string[] }) {
  const [rules, setRules] = useState<Rule[]>([]);
  // The JSON text is what is sent; the form shows it (the last one it could) and writes it.
  const [text, setText] = useState(() => exampleRule(indicators, intervals[0] ?? "1m"));
  const [form, setForm] = useState<RuleForm>(() => textToForm(text, { ...EMPTY_FORM, interval: intervals[0] ?? "1m" }) ?? EMPTY_FORM);
  const [advanced, setAdvanced] = useState(false);
  // The last JSON object typed in the advanced view: its fields the form does not know are kept
  // when a field of the form is edited, and those it cannot show as typed (symbols as a string,
  // right: null...) are named in a warning rather than dropped silently.
  const [typed, setTyped] = useState<unknown>(null);
  const [warning, setWarning] = useState<string | null>(null);
  const series = ruleSeries(indicators);
  const editForm = (change: Partial<RuleForm>) => {
    const next = { ...form, ...change };
    const lost = formLosses(typed, form);
    const rule = formToRule(next, extraFields(typed));
    setForm(next);
    setText(JSON.stringify(rule));
    setTyped(rule);
    setWarning(lost.length ? `Rewritten by the form: ${lost.join(", ")} (as typed in the JSON, the form could not show ${lost.length > 1 ? "them" : "it"}).` : null);
  };
  const editText = (value: string) => {
    setText(value);
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch {
      return; // not JSON (yet): the form keeps the last it could show
    }
    const parsed = ruleToForm(json, form);
    if (!parsed) return;
    setForm(parsed);
    setTyped(json);
    const lost = formLosses(json, parsed);
    setWarning(lost.length ? `The form cannot show ${lost.join(", ")} as typed: editing a field of the form rewrites ${lost.length > 1 ? "them" : "it"}.` : null);
  };
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
      <form
        className="rule-form"
        data-testid="rule-form"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label>
          Kind
          <select data-testid="rule-field-kind" value={form.kind} onChange={(e) => editForm({ kind: e.target.value })}>
            {withCurrent([...RULE_KINDS], form.kind).map((k) => (
              <option key={k} value={k}>
                {k.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        {kindGroup(form.kind) === "crosses" && (
          <>
            <SeriesField label="Left" testid="rule-field-left" value={form.left} series={series} onChange={(left) => editForm({ left })} />
            <label>
              Right
              <select data-testid="rule-field-right" value={form.right} onChange={(e) => editForm({ right: e.target.value })}>
                <option value={LEVEL}>a level…</option>
                {withCurrent(series, form.right === LEVEL ? "" : form.right).map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
          </>
        )}
        {kindGroup(form.kind) === "level" && (
          <SeriesField label="Series" testid="rule-field-series" value={form.series} series={series} onChange={(value) => editForm({ series: value })} />
        )}
        {(kindGroup(form.kind) === "level" || (kindGroup(form.kind) === "crosses" && form.right === LEVEL)) && (
          <label>
            Level
            <input data-testid="rule-field-level" type="number" step="any" value={form.level} onChange={(e) => editForm({ level: e.target.value })} />
          </label>
        )}
        {kindGroup(form.kind) === "breakout" && (
          <label>
            Lookback
            <input data-testid="rule-field-lookback" type="number" min={1} max={500} value={form.lookback} onChange={(e) => editForm({ lookback: e.target.value })} />
          </label>
        )}
        <label>
          Interval
          <select data-testid="rule-field-interval" value={form.interval} onChange={(e) => editForm({ interval: e.target.value })}>
            {withCurrent(intervals, form.interval).map((i) => (
              <option key={i} value={i}>
                {i}
              </option>
            ))}
          </select>
        </label>
        <label>
          Symbols
          <input
            data-testid="rule-field-symbols"
            placeholder="all symbols"
            title="Comma-separated; empty for every symbol"
            value={form.symbols}
            onChange={(e) => editForm({ symbols: e.target.value })}
          />
        </label>
        <label>
          Name
          <input data-testid="rule-field-name" placeholder="my_rule" value={form.name} onChange={(e) => editForm({ name: e.target.value })} />
        </label>
        <label className="check" title="Also fire, marked provisional, on the forming candle">
          <input type="checkbox" data-testid="rule-field-provisional" checked={form.provisional} onChange={(e) => editForm({ provisional: e.target.checked })} />
          Provisional
        </label>
        {warning && (
          <div className="rule-warning" data-testid="rule-form-warning" role="status">
            {warning}
          </div>
        )}
        <details className="rule-advanced" data-testid="rule-advanced" open={advanced} onToggle={(e) => setAdvanced(e.currentTarget.open)}>
          <summary data-testid="rule-advanced-toggle">Advanced (JSON)</summary>
          <textarea data-testid="rule-json" value={text} onChange={(e) => editText(e.target.value)} rows={4} aria-label="New rule (JSON)" spellCheck={false} />
          <div className="rule-series" data-testid="rule-series">
            Series: {series.join(", ")}
          </div>
        </details>
        {/* A submit button: Enter in a field creates the rule too. */}
        <button type="submit" className="rule-submit" data-testid="rule-create" disabled={busy}>
          Create rule
        </button>
      </form>
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

/** The choices, with the current value first when it is not one of them (typed in the JSON):
 * the select then shows it as it is. */
function withCurrent(choices: string[], current: string): string[] {
  return current && !choices.includes(current) ? [current, ...choices] : choices;
}

function SeriesField(props: { label: string; testid: string; value: string; series: string[]; onChange: (value: string) => void }) {
  return (
    <label>
      {props.label}
      <select data-testid={props.testid} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {withCurrent(props.series, props.value).map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}
