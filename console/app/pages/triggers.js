import { html, useEffect, useState } from '../lib/html.js';
import { get, post, patch, del } from '../lib/api.js';
import { config } from '../lib/config.js';
import { navigate, useRoute } from '../lib/route.js';
import { lines } from '../lib/format.js';
import {
  ActionButton, Alert, Check, ConfirmButton, CopyButton, Empty, Facts, Input, Link,
  Loaded, Page, Pager, SecretsDialog, Select, TextArea, Time, useLoad, Status,
  Form, FormLoading, choices, fieldError, useEditor,
} from '../ui.js';
import { LiveRun } from './runs.js';

const SCHEMES = [
  ['', 'none: anyone who knows the id or token may call'],
  ['hmac', 'hmac: X-Webhook-Signature, sha256=<hex>'],
  ['github', 'github: X-Hub-Signature-256'],
  ['stripe', 'stripe: Stripe-Signature'],
  ['slack', 'slack: X-Slack-Signature'],
  ['standard-webhooks', 'standard-webhooks: webhook-signature'],
];

/** A URL the API gave without a host (no HOOKRUN_PUBLIC_URL): on this API's. */
export function absolute(url) {
  return url && url.startsWith('/') ? (config.apiUrl || location.origin) + url : url;
}

function parseJson(textValue, field, label) {
  if (!textValue.trim()) return undefined;
  try {
    return JSON.parse(textValue);
  } catch (e) {
    throw fieldError(field, `${label}: not JSON (${e.message})`);
  }
}

/** What the scheme field says: the settings it keeps while unchanged. */
function signatureHint(sig) {
  const own = sig && ['header', 'prefix', 'encoding', 'tolerance'].filter((k) => sig[k] !== null && sig[k] !== undefined);
  if (!own || own.length === 0) return 'How callers sign their calls.';
  return `Kept while the scheme stays ${sig.scheme}: ${own.map((k) => `${k} ${sig[k]}`).join(', ')}.`;
}

export function TriggerForm({ id, agentId }) {
  const editing = Boolean(id);
  const { form, setForm, bind, error, busy, onSubmit } = useEditor(
    [id, agentId],
    editing,
    () => ({
        agent_id: agentId, name: '', description: '', scheme: 'hmac', secret: '', event_types: '',
        input_mapping: '', rate_limit_per_minute: '', ips: '', origins: '', is_active: true,
        environment: 'production', respond_when: 'queued',
      }),
    () => get(`/api/v1/webhook-triggers/${id}`).then((t) => ({
      agent_id: t.agent_id, name: t.name, description: t.description ?? '',
      scheme: t.has_secret ? (t.signature?.scheme ?? 'hmac') : '', secret: '',
      event_types: (t.event_types || []).join(', '),
      input_mapping: t.input_mapping ? JSON.stringify(t.input_mapping, null, 2) : '',
      rate_limit_per_minute: t.rate_limit_per_minute ?? '',
      ips: (t.allowed_sources?.ips || []).join('\n'), origins: (t.allowed_sources?.origins || []).join('\n'),
      is_active: t.is_active, environment: t.environment, respond_when: t.respond_when, had_secret: t.has_secret,
      signature: t.has_secret ? t.signature : null,
    })),
  );
  const [created, setCreated] = useState(null);
  if (!form) return html`<${FormLoading} title=${editing ? 'Edit trigger' : 'New trigger'} error=${error} />`;
  const submit = onSubmit(async () => {
    const body = {
      name: form.name,
      description: form.description || (editing ? null : undefined),
      event_types: lines(form.event_types),
      input_mapping: parseJson(form.input_mapping, 'input_mapping', 'Input mapping') ?? (editing ? null : undefined),
      rate_limit_per_minute: form.rate_limit_per_minute === '' ? (editing ? null : undefined) : Number(form.rate_limit_per_minute),
      allowed_sources: { ips: lines(form.ips), origins: lines(form.origins) },
      is_active: form.is_active,
      environment: form.environment,
      respond_when: form.respond_when,
    };
    // Only a new scheme is sent: the trigger's own header, prefix,
    // encoding and tolerance (set through the API) stay as they are.
    if (form.scheme && form.scheme !== form.signature?.scheme) body.signature = { scheme: form.scheme };
    if (editing) {
      await patch(`/api/v1/webhook-triggers/${id}`, body);
      navigate(`/triggers/${id}`);
    } else {
      body.agent_id = form.agent_id;
      if (form.scheme) {
        if (form.secret.trim()) body.secret = form.secret.trim();
        else body.generate_secret = true;
      }
      setCreated(await post('/api/v1/webhook-triggers', body));
    }
  });
  return html`<${Page} title=${editing ? `Edit ${form.name}` : 'New trigger'}>
    <${Form} error=${error} onSubmit=${submit}>
      <${Input} label="Name" field="name" required ...${bind('name')} />
      <${Input} label="Description" field="description" ...${bind('description')} />
      <${Select} label="Signature scheme" field="signature" ...${bind('scheme')} disabled=${editing && !form.had_secret}
        options=${editing && form.had_secret ? SCHEMES.filter(([v]) => v) : SCHEMES}
        hint=${editing && !form.had_secret
          ? 'To require a signature, regenerate the secret on the trigger page.'
          : signatureHint(form.signature)} />
      ${!editing && form.scheme && html`<${Input} label="Secret" field="secret" type="password" autocomplete="off" ...${bind('secret')}
        hint="The provider's signing secret (Stripe, Slack); empty: hookrun makes one and shows it once." />`}
      <${TextArea} label="Event types" field="event_types" rows="2" ...${bind('event_types')} hint="Only these events start runs (e.g. pull_request.opened), comma or line separated; empty: all." />
      <${TextArea} label="Input mapping" field="input_mapping" rows="4" class="mono" ...${bind('input_mapping')}
        hint='JSON: input field to a JSON pointer, e.g. {"title": "/pull_request/title"}; empty: the payload as it came.' />
      <div class="row">
        <${Input} label="Rate limit per minute" field="rate_limit_per_minute" type="number" min="1" ...${bind('rate_limit_per_minute')} hint="Empty: the default per-trigger limit." />
        <${Select} label="Environment" options=${[['production', 'production'], ['staging', 'staging']]} ...${bind('environment')} />
        <${Select} label="Token route answers" options=${[['queued', 'when queued (202)'], ['started', 'when started']]} ...${bind('respond_when')} />
      </div>
      <div class="row">
        <${TextArea} label="Allowed source IPs" field="allowed_sources.ips" rows="2" ...${bind('ips')} hint="Addresses or CIDR ranges, one per line; empty: any." />
        <${TextArea} label="Allowed origins" field="allowed_sources.origins" rows="2" ...${bind('origins')} hint="Hosts a browser call may come from; empty: any." />
      </div>
      <${Check} label="Active (takes calls)" checked=${form.is_active} onChange=${(e) => setForm({ ...form, is_active: e.target.checked })} />
      <${Alert} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${editing ? 'Save trigger' : 'Create trigger'}</button>
        <${Link} to=${editing ? `/triggers/${id}` : `/agents/${agentId}`} class="button">Cancel<//>
      </div>
    <//>
    ${created && html`<${SecretsDialog} title=${`Trigger ${created.name} created`} onClose=${() => navigate(`/triggers/${created.id}`)}
      items=${[
        { label: 'Token URL', value: absolute(created.urls?.token_url) },
        { label: 'Token', value: created.token },
        { label: 'Signing secret', value: created.secret },
      ]} />`}
  <//>`;
}

const DEFAULT_TEST = '{\n  "event": "console.test",\n  "data": {"hello": "world"}\n}';

function TestPanel({ trigger, onTested }) {
  const [payload, setPayload] = useState(DEFAULT_TEST);
  const [error, setError] = useState(null);
  const [answer, setAnswer] = useState(null);
  const [busy, setBusy] = useState(false);
  const send = async (e) => {
    e.preventDefault();
    setError(null);
    let body;
    try {
      body = payload.trim() ? JSON.parse(payload) : undefined;
    } catch (err) {
      setError(fieldError('body', `The payload is not JSON: ${err.message}`));
      return;
    }
    setBusy(true);
    try {
      setAnswer(await post(`/api/v1/webhook-triggers/${trigger.id}/test`, body));
      onTested();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="test-title">
    <h2 id="test-title">Test</h2>
    <${Form} error=${error} onSubmit=${send}>
      <${TextArea} label="Test payload" field="body" rows="5" class="mono" value=${payload} onInput=${(e) => setPayload(e.target.value)}
        hint="Sent through the trigger's pipeline (event filter, input mapping) as a TEST run; no signature needed." />
      <${Alert} error=${error} />
      <div class="actions"><button type="submit" class="primary" disabled=${busy}>Test</button></div>
    <//>
    ${answer && html`<div class="test-answer" role="status">
      ${answer.run_id
        ? html`<p>Answer: <strong>${answer.status}</strong>, run <${Link} to=${`/runs/${answer.run_id}`} class="mono">${answer.run_id}<//>.</p>
          <${LiveRun} key=${answer.run_id} runId=${answer.run_id} />`
        : html`<p>Answer: <strong>${answer.status}</strong> (no run was started).</p>`}
    </div>`}
  </section>`;
}

function Invocations({ id, version }) {
  const { query } = useRoute();
  const state = useLoad(() => get(`/api/v1/webhook-triggers/${id}/invocations`, { limit: 25, cursor: query.cursor }), [id, query.cursor, version]);
  return html`<section aria-labelledby="inv-title">
    <div class="page-head"><h2 id="inv-title">Invocations</h2><button type="button" onClick=${state.reload}>Refresh invocations</button></div>
    <${Loaded} state=${state}>${(page) => html`
      ${page.rejected_unauthenticated?.length > 0 && html`<h3>Refused before they authenticated</h3>
        <div class="table-wrap"><table><caption class="sr-only">Refused calls per minute</caption>
        <thead><tr><th scope="col">Minute</th><th scope="col">Reason</th><th scope="col">Calls</th><th scope="col">Last source</th></tr></thead>
        <tbody>${page.rejected_unauthenticated.map((r) => html`<tr><td><${Time} t=${r.minute} /></td><td>${r.reason}</td><td>${r.count}</td><td class="mono">${r.last_source_ip ?? '—'}</td></tr>`)}</tbody></table></div>`}
      ${page.data.length === 0
        ? html`<${Empty}>No calls yet. Press Test above, or call one of the URLs.<//>`
        : html`<div class="table-wrap"><table><caption class="sr-only">Invocations</caption>
          <thead><tr><th scope="col">Time</th><th scope="col">Result</th><th scope="col" class="opt">Status</th><th scope="col" class="opt">Run</th><th scope="col" class="opt">Source</th><th scope="col" class="opt">Payload</th></tr></thead>
          <tbody>${page.data.map((i) => html`<tr>
            <td><${Time} t=${i.timestamp} />${i.test ? html` <span class="tag">test</span>` : ''}</td>
            <td>${i.result}${i.error ? html`<div class="small alert-text">${i.error}</div>` : ''}${i.note ? html`<div class="small muted">${i.note}</div>` : ''}</td>
            <td class="opt">${i.status}</td>
            <td class="opt">${i.run_id ? html`<${Link} to=${`/runs/${i.run_id}`} class="mono">${i.run_id}<//>` : '—'}</td>
            <td class="mono opt">${i.source_ip ?? '—'}</td>
            <td class="opt"><code class="excerpt">${i.payload_excerpt ?? ''}</code></td></tr>`)}</tbody></table></div>
          <${Pager} path=${`/triggers/${id}`} query=${query} next=${page.next_cursor} />`}`}<//>
  </section>`;
}

export function TriggerPage({ id }) {
  const state = useLoad(() => get(`/api/v1/webhook-triggers/${id}`), [id]);
  const [shown, setShown] = useState(null);
  const [tested, setTested] = useState(0);
  return html`<${Loaded} state=${state}>${(t) => html`<${Page} title=${t.name}
    actions=${html`<${Link} to=${`/triggers/${id}/edit`} class="button">Edit trigger<//>
      <${Link} to=${`/agents/${t.agent_id}`} class="button">Agent<//>
      <${Link} to="/runs" query=${{ trigger_id: id }} class="button">Runs<//>`}>
    <${Facts} rows=${[
      ['Id', html`<span class="mono">${t.id}</span>`],
      ['State', html`<${Status} value=${t.is_active ? 'active' : 'disabled'} />`],
      ['Signature', t.has_secret ? `${t.signature?.scheme ?? 'hmac'} (${t.signature?.header ?? 'default header'})` : 'none'],
      ['Event types', t.event_types.length ? t.event_types.join(', ') : 'all'],
      ['Input mapping', t.input_mapping ? html`<code>${JSON.stringify(t.input_mapping)}</code>` : 'the payload as it came'],
      ['Rate limit', t.rate_limit_per_minute ? `${t.rate_limit_per_minute} a minute` : 'default'],
      ['Allowed sources', [...(t.allowed_sources?.ips || []), ...(t.allowed_sources?.origins || [])].join(', ') || 'any'],
      ['Environment', t.environment],
      ['Last used', html`<${Time} t=${t.last_used_at} />`],
    ]} />
    <h2>URLs</h2>
    <ul class="urls">${Object.entries(t.urls).map(([k, u]) => html`<li>
      <div><code class="break">${absolute(u)}</code> ${!u.endsWith('…') && html`<${CopyButton} text=${absolute(u)} label=${{ by_id: 'id URL', bearer: 'bearer URL', agent: 'agent URL' }[k] ?? `${k} URL`} />`}</div>
      <div class="muted small">${t.authentication[k]}</div></li>`)}</ul>
    <p class="small muted">The token URL's token was shown once, when the trigger was made; regenerate it for a new one.</p>
    <div class="actions">
      <${ActionButton} label=${t.is_active ? 'Disable trigger' : 'Enable trigger'}
        action=${async () => { await patch(`/api/v1/webhook-triggers/${id}`, { is_active: !t.is_active }); await state.reload(); }} />
      <${ConfirmButton} label="Regenerate token" question="A new token (and token URL) is made and shown once; the current one stops working at once."
        onConfirm=${async () => { const r = await post(`/api/v1/webhook-triggers/${id}/regenerate-token`); setShown({ title: 'New token', items: [{ label: 'Token URL', value: absolute(r.urls?.token_url) }, { label: 'Token', value: r.token }] }); }} />
      <${ConfirmButton} label="Regenerate secret" question="A new signing secret is made and shown once; calls signed with the current one are refused at once."
        onConfirm=${async () => { const r = await post(`/api/v1/webhook-triggers/${id}/regenerate-secret`); setShown({ title: 'New signing secret', items: [{ label: 'Signing secret', value: r.secret }] }); await state.reload(); }} />
      <${ConfirmButton} label="Delete trigger" danger question=${`Delete ${t.name}? Its URLs answer 404 at once.`}
        onConfirm=${async () => { await del(`/api/v1/webhook-triggers/${id}`); navigate(`/agents/${t.agent_id}`); }} />
    </div>
    <${TestPanel} trigger=${t} onTested=${() => setTested((n) => n + 1)} />
    <${Invocations} id=${id} version=${tested} />
    ${shown && html`<${SecretsDialog} title=${shown.title} items=${shown.items} onClose=${() => setShown(null)} />`}
  <//>`}<//>`;
}


