/** The rule editor's form and a rule's JSON form (docs/signals.md, openapi.json RuleInput),
 * each made from the other: the form writes the JSON the API takes, the JSON (typed in the
 * advanced view) fills the form. Pure: tested with vitest. */

export const RULE_KINDS = [
  "crosses_above",
  "crosses_below",
  "enters_above",
  "leaves_above",
  "enters_below",
  "leaves_below",
  "breakout_up",
  "breakout_down",
] as const;

export type KindGroup = "crosses" | "level" | "breakout";

/** Which fields a kind takes: crosses_... left and right (a series or a level), enters_... and leaves_...
 * a series and a level, breakout_... a lookback. */
export function kindGroup(kind: string): KindGroup {
  if (kind.startsWith("crosses_")) return "crosses";
  if (kind.startsWith("breakout_")) return "breakout";
  return "level";
}

/** What a crosses_* rule's right side is when it is a level (a number), not a series. */
export const LEVEL = "#level";

export interface RuleForm {
  name: string;
  kind: string;
  interval: string;
  symbols: string; // "AAPL, MSFT"; empty: every symbol
  left: string;
  right: string; // a series, or LEVEL (then `level` is the number)
  series: string;
  level: string;
  lookback: string;
  provisional: boolean;
}

export const EMPTY_FORM: RuleForm = {
  name: "",
  kind: "crosses_above",
  interval: "1m",
  symbols: "",
  left: "close",
  right: LEVEL,
  series: "close",
  level: "",
  lookback: "20",
  provisional: false,
};

/** A number typed in the form: the number, or the text itself when it is not one (the API's
 * validation then names the field), or nothing when empty. */
function number(text: string): number | string | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

export function parseSymbols(text: string): "*" | string[] {
  const list = text
    .split(/[\s,]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  return list.length === 0 || list.includes("*") ? "*" : [...new Set(list)];
}

/** The JSON fields the form has a field for; any other one typed in the JSON (a field the form
 * does not know) is kept as it is when the form is edited (extraFields). */
export const FORM_FIELDS = ["name", "kind", "interval", "symbols", "left", "right", "series", "level", "lookback", "provisional"];

/** The rule the form describes, in the API's JSON form: only its kind's fields, then ``extra``
 * (fields the form does not know, typed in the JSON). */
export function formToRule(form: RuleForm, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const rule: Record<string, unknown> = { name: form.name.trim(), kind: form.kind };
  const group = kindGroup(form.kind);
  if (group === "crosses") {
    rule.left = form.left;
    rule.right = form.right === LEVEL ? number(form.level) : form.right;
  } else if (group === "level") {
    rule.series = form.series;
    rule.level = number(form.level);
  } else {
    rule.lookback = number(form.lookback);
  }
  rule.interval = form.interval;
  rule.symbols = parseSymbols(form.symbols);
  if (form.provisional) rule.provisional = true;
  for (const [k, v] of Object.entries(rule)) if (v === undefined) delete rule[k];
  for (const [k, v] of Object.entries(extra)) if (!FORM_FIELDS.includes(k)) rule[k] = v;
  return rule;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** A typed JSON's fields the form does not know (kept when the form is edited). */
export function extraFields(json: unknown): Record<string, unknown> {
  if (!isObject(json)) return {};
  return Object.fromEntries(Object.entries(json).filter(([k]) => !FORM_FIELDS.includes(k)));
}

/** The fields of a typed JSON that the form cannot show as they are, so that writing the JSON
 * from the form (``form``, filled from it) would change or drop them: symbols as a string,
 * right: null, a field of another kind... Only what matters: a name's spaces, symbols' case
 * and provisional: false come out the same. */
export function formLosses(json: unknown, form: RuleForm): string[] {
  if (!isObject(json)) return [];
  const written = formToRule(form);
  const same = (k: string, v: unknown): unknown => {
    if (k === "name" && typeof v === "string") return v.trim();
    if (k === "provisional" && v === false) return undefined;
    if (k === "symbols" && Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string" && /^[^\s,]+$/.test(s))) return parseSymbols(v.join(","));
    return v;
  };
  return Object.keys(json).filter((k) => FORM_FIELDS.includes(k) && JSON.stringify(same(k, json[k])) !== JSON.stringify(written[k]));
}

const text = (x: unknown, fallback: string): string => (typeof x === "string" ? x : typeof x === "number" ? String(x) : fallback);

/** The form for a rule's JSON (parsed), keeping `base`'s values for the fields the JSON does
 * not have (so switching kinds keeps what was typed); null when it is not a JSON object. */
export function ruleToForm(json: unknown, base: RuleForm = EMPTY_FORM): RuleForm | null {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return null;
  const r = json as Record<string, unknown>;
  const form: RuleForm = {
    ...base,
    name: text(r.name, ""),
    kind: text(r.kind, base.kind),
    interval: text(r.interval, base.interval),
    symbols: Array.isArray(r.symbols) ? r.symbols.map((s) => text(s, "")).join(", ") : "",
    provisional: r.provisional === true,
  };
  if ("left" in r) form.left = text(r.left, "");
  if ("right" in r) {
    if (typeof r.right === "number") {
      form.right = LEVEL;
      form.level = String(r.right);
    } else form.right = text(r.right, "");
  }
  if ("series" in r) form.series = text(r.series, "");
  if ("level" in r) form.level = text(r.level, "");
  if ("lookback" in r) form.lookback = text(r.lookback, "");
  return form;
}

/** The JSON text the advanced view shows for a form (with ``extra``, as formToRule). */
export function ruleText(form: RuleForm, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(formToRule(form, extra));
}

/** The form for the advanced view's text, or null while it is not a JSON object. */
export function textToForm(text: string, base: RuleForm): RuleForm | null {
  try {
    return ruleToForm(JSON.parse(text), base);
  } catch {
    return null;
  }
}
