// The pieces every page is made of. Controls get their accessible names
// from visible labels; errors are announced (role="alert") where they
// happened.
import { html, createContext, useCallback, useContext, useEffect, useRef, useState } from './lib/html.js';
import { href } from './lib/route.js';
import { when } from './lib/format.js';

let nextId = 0;
const useId = (prefix) => useRef(`${prefix}-${++nextId}`).current;

/** Loads with `loader()` whenever `deps` change; `reload()` loads again. */
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  // Only the latest request's answer is shown: an older one that comes
  // late (a filter changed meanwhile) is dropped.
  const latest = useRef(0);
  useEffect(() => () => { latest.current = -1; }, []);
  const load = useCallback(() => {
    const mine = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    return loader().then(
      (data) => mine === latest.current && setState({ data, error: null, loading: false }),
      (error) => mine === latest.current && setState({ data: null, error, loading: false }),
    );
  }, deps);
  useEffect(() => { load(); }, [load]);
  const setData = (f) => setState((s) => ({ ...s, data: typeof f === 'function' ? f(s.data) : f }));
  return { ...state, reload: load, setData };
}

/**
 * A create-or-edit form's state: `blank()` gives a new record's values,
 * `load()` (a promise) an existing one's; both run again when `deps`
 * change. `onSubmit(save)` is the form's handler: it runs `save()` with
 * the busy flag set and keeps its error for the form to show.
 */
export function useEditor(deps, editing, blank, load) {
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!editing) setForm(blank());
    else load().then(setForm, setError);
  }, deps);
  const bind = (name) => ({ value: form[name], onInput: (e) => setForm({ ...form, [name]: e.target.value }) });
  const onSubmit = (save) => async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await save();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { form, setForm, bind, error, busy, onSubmit };
}

/** A form page whose record is still loading, or could not be. */
export function FormLoading({ title, error }) {
  return html`<${Page} title=${title}>${error ? html`<${Alert} error=${error} />` : html`<p class="muted" aria-busy="true">Loading…</p>`}<//>`;
}

/** An error the page finds itself, about one field (shown next to it). */
export function fieldError(field, message) {
  return Object.assign(new Error(message), { field });
}

/** [value, label] options of a listing's records (`{id, name}`), after `first`. */
export function choices(listing, first) {
  return [first, ...((listing?.data) || []).map((r) => [r.id, r.name])];
}

export function Page({ title, actions, children }) {
  useEffect(() => { document.title = `${title} · hookrun`; }, [title]);
  return html`<section class="page">
    <div class="page-head">
      <h1 tabindex="-1">${title}</h1>
      ${actions && html`<div class="actions">${actions}</div>`}
    </div>
    ${children}
  </section>`;
}

export function Alert({ error }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : error.message;
  return html`<p class="alert" role="alert">${text}</p>`;
}

/** What a page shows while it loads, or why it could not. */
export function Loaded({ state, children }) {
  if (state.error) return html`<${Alert} error=${state.error} />`;
  if (state.data === null) return html`<p class="muted" aria-busy="true">Loading…</p>`;
  return children(state.data);
}

export function Empty({ children }) {
  return html`<div class="empty"><p>${children}</p></div>`;
}

export function Status({ value }) {
  return html`<span class=${`status status-${value}`}>${value}</span>`;
}

export function Time({ t }) {
  return t ? html`<time datetime=${t}>${when(t)}</time>` : html`<span class="muted">—</span>`;
}

export function Link({ to, query, children, ...rest }) {
  return html`<a href=${href(to, query)} ...${rest}>${children}</a>`;
}

export function CopyButton({ text, label }) {
  const [note, setNote] = useState('');
  const copy = async () => {
    try {
      // Absent where the page is not a secure context (plain http on
      // another host than localhost).
      await navigator.clipboard.writeText(text);
      setNote('Copied');
      setTimeout(() => setNote(''), 1500);
    } catch {
      setNote('Could not copy here: select the text and copy it yourself');
    }
  };
  return html`<button type="button" class="small" onClick=${copy}>${`Copy ${label}`}</button>
    <span class=${note === 'Copied' ? 'copied' : 'copied failed'} aria-live="polite">${note}</span>`;
}

/** The error of the form a control is in (see `Form`). */
const FormError = createContext(null);

/**
 * The message of `error` when it is about `field` (the API's field path:
 * `runner.url` is about `runner.url` and about `runner`); `field` may
 * list several, separated by spaces.
 */
function fieldMessage(error, field) {
  const at = error?.field;
  if (!at || !field) return null;
  const hit = field.split(' ').some((f) => at === f || at.startsWith(`${f}.`) || at.startsWith(`${f}[`));
  return hit ? error.message : null;
}

/** A control's label, hint and error, wired for assistive technology. */
function useControl(prefix, hint, field) {
  const id = useId(prefix);
  const error = fieldMessage(useContext(FormError), field);
  const described = [hint && `${id}-hint`, error && `${id}-err`].filter(Boolean).join(' ') || undefined;
  const props = { id, 'aria-describedby': described, 'aria-invalid': error ? 'true' : undefined, 'data-field': field };
  const notes = html`${hint && html`<small id=${`${id}-hint`}>${hint}</small>`}
    ${error && html`<small class="field-error" id=${`${id}-err`}>${error}</small>`}`;
  return { id, props, notes };
}

export function Input({ label, hint, field, ...rest }) {
  const c = useControl('f', hint, field);
  return html`<div class="field">
    <label for=${c.id}>${label}</label>
    <input ...${c.props} ...${rest} />
    ${c.notes}
  </div>`;
}

export function TextArea({ label, hint, field, ...rest }) {
  const c = useControl('f', hint, field);
  return html`<div class="field">
    <label for=${c.id}>${label}</label>
    <textarea ...${c.props} ...${rest}></textarea>
    ${c.notes}
  </div>`;
}

/** `options`: [value, text] pairs. */
export function Select({ label, hint, field, options, ...rest }) {
  const c = useControl('f', hint, field);
  return html`<div class="field">
    <label for=${c.id}>${label}</label>
    <select ...${c.props} ...${rest}>
      ${options.map(([v, t]) => html`<option value=${v}>${t}</option>`)}
    </select>
    ${c.notes}
  </div>`;
}

export function Check({ label, hint, field, ...rest }) {
  const c = useControl('f', hint, field);
  return html`<div class="field check">
    <input type="checkbox" ...${c.props} ...${rest} />
    <label for=${c.id}>${label}</label>
    ${c.notes}
  </div>`;
}

/**
 * A form whose `error` is shown where it belongs: next to the control of
 * the field the API named (focused), and at the end beside the submit
 * button, announced.
 */
export function Form({ error, onSubmit, children, ...rest }) {
  const ref = useRef(null);
  useEffect(() => {
    const bad = error?.field && ref.current?.querySelector('[aria-invalid="true"]');
    if (!bad) return;
    // A field in a collapsed section: open it first.
    const section = bad.closest('details');
    if (section) section.open = true;
    bad.focus();
  }, [error]);
  return html`<form class="form" ref=${ref} onSubmit=${onSubmit} novalidate ...${rest}>
    <${FormError.Provider} value=${error}>${children}<//>
  </form>`;
}

/** A modal dialog (the browser's own: focus kept inside, Escape closes). */
export function Dialog({ title, onClose, children }) {
  const ref = useRef(null);
  const id = useId('dlg');
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d && d.open && d.close();
  }, []);
  // Escape fires `cancel`, then `close`: only `close` is heard.
  return html`<dialog ref=${ref} aria-labelledby=${id} onClose=${onClose}>
    <h2 id=${id}>${title}</h2>
    ${children}
  </dialog>`;
}

/** Secrets shown once, each with a copy button. */
export function SecretsDialog({ title, items, note, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>Shown this once: copy ${items.length > 1 ? 'them' : 'it'} now. hookrun keeps no readable copy.</p>
    ${items.filter((i) => i.value).map((i) => html`<div class="secret">
      <${Input} label=${i.label} value=${i.value} readonly onFocus=${(e) => e.target.select()} />
      <${CopyButton} text=${i.value} label=${i.label.toLowerCase()} />
    </div>`)}
    ${note}
    <div class="actions"><button type="button" class="primary" onClick=${onClose}>Done</button></div>
  <//>`;
}

/**
 * A button that asks first: `question` in a dialog, then `onConfirm()`
 * (async; its error is shown in the dialog).
 */
export function ConfirmButton({ label, title, question, confirmLabel, onConfirm, danger }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setOpen(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class=${danger ? 'danger' : ''} onClick=${() => setOpen(true)}>${label}</button>
    ${open && html`<${Dialog} title=${title || `${label}?`} onClose=${() => setOpen(false)}>
      <p>${question}</p>
      <${Alert} error=${error} />
      <div class="actions">
        <button type="button" onClick=${() => setOpen(false)}>Keep as it is</button>
        <button type="button" class=${danger ? 'danger' : 'primary'} disabled=${busy} onClick=${go}>${confirmLabel || label}</button>
      </div>
    <//>`}`;
}

/** A button running `action()`, disabled while it runs, its error beside it. */
export function ActionButton({ label, action, primary, ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action">
    <button type="button" class=${primary ? 'primary' : ''} disabled=${busy} onClick=${run} ...${rest}>${label}</button>
    ${error && html`<span class="alert inline" role="alert">${error.message}</span>`}
  </span>`;
}

/** Paging by the API's cursor, kept in the URL. */
export function Pager({ path, query, next }) {
  if (!next && !query.cursor) return null;
  return html`<nav class="pager" aria-label="Pages">
    ${query.cursor && html`<${Link} to=${path} query=${{ ...query, cursor: undefined }}>First page<//>`}
    ${next && html`<${Link} to=${path} query=${{ ...query, cursor: next }}>Next page<//>`}
  </nav>`;
}

export function Facts({ rows }) {
  return html`<dl class="facts">
    ${rows.filter(Boolean).map(([k, v]) => html`<div><dt>${k}</dt><dd>${v ?? html`<span class="muted">—</span>`}</dd></div>`)}
  </dl>`;
}

export function Code({ value, label }) {
  return html`<pre class="code" tabindex="0" aria-label=${label}>${value}</pre>`;
}
