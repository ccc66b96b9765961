import { html, useEffect, useState } from '../lib/html.js';
import { all, get, post, patch, del } from '../lib/api.js';
import { navigate, useRoute } from '../lib/route.js';
import { duration, json } from '../lib/format.js';
import {
  ActionButton, Alert, Check, Code, ConfirmButton, Empty, Facts, Input, Link, Loaded, Page,
  Pager, SecretsDialog, Select, Status, Time, useLoad,
  Form, FormLoading, choices, useEditor,
} from '../ui.js';

const EVENTS = ['run.succeeded', 'run.failed', 'run.started', 'run.cancelled'];

export function Subscriptions() {
  const { query } = useRoute();
  const state = useLoad(() => get('/api/v1/subscriptions', { limit: 50, cursor: query.cursor }), [query.cursor]);
  return html`<${Page} title="Subscriptions" actions=${html`<${Link} to="/subscriptions/new" class="button primary">New subscription<//>`}>
    <p class="muted">A subscription gets a signed POST (Standard Webhooks and X-Crewship headers) for each run event it names, retried until your URL answers 2xx.</p>
    <${Loaded} state=${state}>${(page) => page.data.length === 0 && !query.cursor
      ? html`<${Empty}>No subscriptions. <${Link} to="/subscriptions/new">Subscribe a URL<//> to hear when runs succeed or fail.<//>`
      : html`<div class="table-wrap"><table><caption class="sr-only">Subscriptions</caption>
        <thead><tr><th scope="col">Name</th><th scope="col" class="opt">URL</th><th scope="col" class="opt">Events</th><th scope="col">State</th></tr></thead>
        <tbody>${page.data.map((s) => html`<tr>
          <td><${Link} to=${`/subscriptions/${s.id}`}>${s.name}<//></td>
          <td class="opt"><code class="break">${s.url}</code></td>
          <td class="opt">${s.events.join(', ')}</td>
          <td>${s.enabled ? (s.failing_since ? html`<span class="alert-text">failing since <${Time} t=${s.failing_since} /></span>` : 'enabled') : html`disabled${s.disabled_reason ? html`<div class="small muted">${s.disabled_reason}</div>` : ''}`}</td>
        </tr>`)}</tbody></table></div>
        <${Pager} path="/subscriptions" query=${query} next=${page.next_cursor} />`}<//>
  <//>`;
}

export function SubscriptionForm({ id }) {
  const editing = Boolean(id);
  const agents = useLoad(() => all('/api/v1/agents'), []);
  const { form, setForm, bind, error, busy, onSubmit } = useEditor(
    [id],
    editing,
    () => ({ name: '', url: '', events: ['run.succeeded', 'run.failed'], agent_id: '', environment: 'production', enabled: true }),
    () => get(`/api/v1/subscriptions/${id}`).then((s) => ({
      name: s.name, url: s.url, events: s.events, agent_id: s.agent_id ?? '', environment: s.environment, enabled: s.enabled,
    })),
  );
  const [created, setCreated] = useState(null);
  if (!form) return html`<${FormLoading} title=${editing ? 'Edit subscription' : 'New subscription'} error=${error} />`;
  const toggle = (ev) => (e) => setForm({ ...form, events: e.target.checked ? [...form.events, ev] : form.events.filter((x) => x !== ev) });
  const submit = onSubmit(async () => {
    const body = {
      name: form.name, url: form.url, events: form.events, environment: form.environment, enabled: form.enabled,
      agent_id: form.agent_id || (editing ? null : undefined),
    };
    if (editing) {
      await patch(`/api/v1/subscriptions/${id}`, body);
      navigate(`/subscriptions/${id}`);
    } else {
      setCreated(await post('/api/v1/subscriptions', body));
    }
  });
  const agentOptions = choices(agents.data, ['', 'every agent']);
  return html`<${Page} title=${editing ? `Edit ${form.name}` : 'New subscription'}>
    <${Form} error=${error} onSubmit=${submit}>
      <${Input} label="Name" field="name" required ...${bind('name')} />
      <${Input} label="URL" field="url" type="url" required ...${bind('url')} hint="https:// (plain http and private addresses only when the server allows them)." />
      <fieldset><legend>Events</legend>
        ${EVENTS.map((ev) => html`<${Check} label=${ev} checked=${form.events.includes(ev)} onChange=${toggle(ev)} />`)}
      </fieldset>
      <div class="row">
        <${Select} label="Agent" field="agent_id" options=${agentOptions} ...${bind('agent_id')} />
        <${Select} label="Environment" options=${[['production', 'production'], ['staging', 'staging']]} ...${bind('environment')} />
      </div>
      <${Check} label="Enabled" checked=${form.enabled} onChange=${(e) => setForm({ ...form, enabled: e.target.checked })} />
      <${Alert} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${editing ? 'Save subscription' : 'Create subscription'}</button>
        <${Link} to=${editing ? `/subscriptions/${id}` : '/subscriptions'} class="button">Cancel<//>
      </div>
    <//>
    ${created && html`<${SecretsDialog} title=${`Subscription ${created.name} created`} onClose=${() => navigate(`/subscriptions/${created.id}`)}
      items=${[{ label: 'Signing secret', value: created.secret }]}
      note=${html`<p class="small">Check each delivery's signature with it (hookrun verify, or any Standard Webhooks library).</p>`} />`}
  <//>`;
}

export function SubscriptionPage({ id }) {
  const { query } = useRoute();
  const state = useLoad(() => get(`/api/v1/subscriptions/${id}`), [id]);
  const deliveries = useLoad(() => get(`/api/v1/subscriptions/${id}/deliveries`, { limit: 25, cursor: query.cursor }), [id, query.cursor]);
  const [shown, setShown] = useState(null);
  return html`<${Loaded} state=${state}>${(s) => html`<${Page} title=${s.name}
    actions=${html`<${Link} to=${`/subscriptions/${id}/edit`} class="button">Edit subscription<//>`}>
    <${Facts} rows=${[
      ['Id', html`<span class="mono">${s.id}</span>`],
      ['URL', html`<code class="break">${s.url}</code>`],
      ['Events', s.events.join(', ')],
      ['Agent', s.agent_id ? html`<${Link} to=${`/agents/${s.agent_id}`} class="mono">${s.agent_id}<//>` : 'every agent'],
      ['Environment', s.environment],
      ['State', s.enabled ? 'enabled' : `disabled${s.disabled_reason ? `: ${s.disabled_reason}` : ''}`],
      s.failing_since && ['Failing since', html`<${Time} t=${s.failing_since} />`],
      s.previous_secret_valid_until && ['Previous secret signs until', html`<${Time} t=${s.previous_secret_valid_until} />`],
    ]} />
    <div class="actions">
      <${ActionButton} label=${s.enabled ? 'Disable subscription' : 'Enable subscription'}
        action=${async () => { await patch(`/api/v1/subscriptions/${id}`, { enabled: !s.enabled }); await state.reload(); }} />
      <${ConfirmButton} label="Rotate secret" question="A new signing secret is made and shown once; the previous one also signs for 24 hours, so receivers can switch."
        onConfirm=${async () => { const r = await post(`/api/v1/subscriptions/${id}/rotate-secret`, { grace_seconds: 86400 }); setShown(r.secret); await state.reload(); }} />
      <${ConfirmButton} label="Delete subscription" danger question=${`Delete ${s.name}? Deliveries in flight stop.`}
        onConfirm=${async () => { await del(`/api/v1/subscriptions/${id}`); navigate('/subscriptions'); }} />
    </div>
    <div class="page-head"><h2>Deliveries</h2><button type="button" onClick=${deliveries.reload}>Refresh deliveries</button></div>
    <${Loaded} state=${deliveries}>${(page) => page.data.length === 0
      ? html`<${Empty}>No deliveries yet: one is made for each ${s.events.join(' or ')} event of ${s.agent_id ? 'its agent' : 'any agent'}.<//>`
      : html`<div class="table-wrap"><table><caption class="sr-only">Deliveries</caption>
        <thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="opt">Attempts</th><th scope="col" class="opt">Last answer</th><th scope="col" class="opt">Created</th></tr></thead>
        <tbody>${page.data.map((d) => html`<tr>
          <td><${Link} to=${`/deliveries/${d.id}`} class="mono">${d.id}<//></td>
          <td>${d.event}<div class="small"><${Link} to=${`/runs/${d.run_id}`} class="mono">${d.run_id}<//></div></td>
          <td><${Status} value=${d.status} /></td>
          <td class="opt">${d.attempts}</td>
          <td class="opt">${d.last_status_code ?? '—'}${d.last_error ? html`<div class="small alert-text clip">${d.last_error}</div>` : ''}</td>
          <td class="opt"><${Time} t=${d.created_at} /></td></tr>`)}</tbody></table></div>
        <${Pager} path=${`/subscriptions/${id}`} query=${query} next=${page.next_cursor} />`}<//>
    ${shown && html`<${SecretsDialog} title="New signing secret" items=${[{ label: 'Signing secret', value: shown }]} onClose=${() => setShown(null)} />`}
  <//>`}<//>`;
}

export function DeliveryPage({ id }) {
  const state = useLoad(() => get(`/api/v1/deliveries/${id}`), [id]);
  // After a redelivery: look again each second until its attempt is in
  // the log (for at most 30 s).
  const [waiting, setWaiting] = useState(null);
  useEffect(() => {
    if (!waiting) return undefined;
    if ((state.data?.attempt_log.length ?? 0) > waiting.seen || waiting.tries > 30) {
      setWaiting(null);
      return undefined;
    }
    const t = setTimeout(() => { state.reload().then(() => setWaiting((w) => w && { ...w, tries: w.tries + 1 })); }, 1000);
    return () => clearTimeout(t);
  }, [waiting, state.data]);
  const queued = Boolean(waiting);
  return html`<${Loaded} state=${state}>${(d) => html`<${Page} title=${`Delivery ${d.id}`}
    actions=${html`<${ActionButton} label="Redeliver" primary action=${async () => { await post(`/api/v1/deliveries/${id}/redeliver`); setWaiting({ seen: state.data?.attempt_log.length ?? 0, tries: 0 }); }} />`}>
    ${queued && html`<p role="status" class="notice">Redelivery queued: its attempt appears below when made.</p>`}
    <${Facts} rows=${[
      ['Status', html`<${Status} value=${d.status} />`],
      ['Event', d.event],
      ['Run', html`<${Link} to=${`/runs/${d.run_id}`} class="mono">${d.run_id}<//>`],
      ['Subscription', html`<${Link} to=${`/subscriptions/${d.subscription_id}`} class="mono">${d.subscription_id}<//>`],
      ['Attempts', d.attempts],
      ['Next attempt', d.next_attempt_at ? html`<${Time} t=${d.next_attempt_at} />` : null],
      ['Created', html`<${Time} t=${d.created_at} />`],
    ]} />
    <h2>Attempts</h2>
    ${d.attempt_log.length === 0 ? html`<${Empty}>No attempt yet: the first is on its way.<//>` : html`<div class="table-wrap"><table><caption class="sr-only">Attempts</caption>
      <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Answer</th><th scope="col">Duration</th><th scope="col">Error or answer body</th></tr></thead>
      <tbody>${d.attempt_log.map((a) => html`<tr>
        <td>${a.attempt}${a.manual ? html` <span class="tag">manual</span>` : ''}</td>
        <td><${Time} t=${a.timestamp} /></td>
        <td>${a.status_code ?? 'none'}</td>
        <td>${duration(a.duration_ms)}</td>
        <td>${a.error ? html`<span class="alert-text">${a.error}</span>` : ''}${a.response_excerpt ? html`<code class="excerpt">${a.response_excerpt}</code>` : ''}</td></tr>`)}</tbody></table></div>`}
    <h2>Body</h2>
    <${Code} label="Delivery body" value=${(() => { try { return json(JSON.parse(d.body)); } catch { return d.body; } })()} />
  <//>`}<//>`;
}
