import { html, useEffect, useState } from '../lib/html.js';
import { all, get, post, patch, del } from '../lib/api.js';
import { navigate, useRoute } from '../lib/route.js';
import {
  Alert, Check, Code, ConfirmButton, CopyButton, Empty, Facts, Input, Link,
  Loaded, Page, Pager, SecretsDialog, Select, TextArea, Time, useLoad,
  Form, FormLoading, choices, fieldError, useEditor,
} from '../ui.js';

export const RUNNERS = [
  ['echo', 'echo: answers with its message (demos, tests)'],
  ['http', 'http: POSTs the run to your URL'],
  ['openai', 'openai: an OpenAI-compatible chat model'],
  ['bedrock', 'bedrock: a model on Amazon Bedrock'],
  ['lambda', 'lambda: an AWS Lambda function'],
];

export const SAMPLE_BODY = '{"event":"console.test","data":{"hello":"world"}}';

export function Agents() {
  const { query } = useRoute();
  const state = useLoad(() => get('/api/v1/agents', { limit: 50, cursor: query.cursor }), [query.cursor]);
  return html`<${Page} title="Agents" actions=${html`<${Link} to="/agents/new" class="button primary">New agent<//>`}>
    <${Loaded} state=${state}>${(page) => page.data.length === 0 && !query.cursor
      ? html`<${Empty}>No agents yet. <${Link} to="/agents/new">Create an agent<//> to get a webhook URL that starts its runs.<//>`
      : html`<div class="table-wrap"><table>
          <caption class="sr-only">Agents</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Runner</th><th scope="col">State</th><th scope="col" class="opt">Created</th></tr></thead>
          <tbody>${page.data.map((a) => html`<tr>
            <td><${Link} to=${`/agents/${a.id}`}>${a.name}<//><div class="muted small mono">${a.id}</div></td>
            <td>${a.runner.type}</td>
            <td>${a.enabled ? 'enabled' : 'disabled'}</td>
            <td class="opt"><${Time} t=${a.created_at} /></td>
          </tr>`)}</tbody>
        </table></div>
        <${Pager} path="/agents" query=${query} next=${page.next_cursor} />`}<//>
  <//>`;
}

function runnerForm(r = { type: 'echo' }) {
  return {
    type: r.type,
    url: r.url ?? '',
    headers: '',
    headerNames: r.headers ? Object.keys(r.headers) : [],
    model: r.model ?? '',
    base_url: r.base_url ?? '',
    api_key: '',
    has_api_key: Boolean(r.has_api_key),
    system: r.system ?? '',
    prompt: r.prompt ?? '',
    max_tokens: r.max_tokens ?? '',
    temperature: r.temperature ?? '',
    model_id: r.model_id ?? '',
    region: r.region ?? '',
    function: r.function ?? '',
    stream: Boolean(r.stream),
  };
}

const num = (v) => (v === '' || v === null || v === undefined ? undefined : Number(v));
const text = (v) => (v === '' ? undefined : v);

/** The runner as the API takes it; write-only values left empty are kept. */
function runnerBody(f) {
  switch (f.type) {
    case 'http': {
      const out = { type: 'http', url: f.url };
      if (f.headers.trim()) {
        out.headers = {};
        for (const line of f.headers.split('\n').map((l) => l.trim()).filter(Boolean)) {
          const at = line.indexOf(':');
          if (at < 1) throw fieldError('runner.headers', `Headers: "${line}" is not "Name: value"`);
          out.headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
      }
      return out;
    }
    case 'openai':
      return {
        type: 'openai', model: f.model, base_url: text(f.base_url), api_key: text(f.api_key),
        system: text(f.system), prompt: text(f.prompt), max_tokens: num(f.max_tokens), temperature: num(f.temperature),
      };
    case 'bedrock':
      return {
        type: 'bedrock', model_id: f.model_id, region: text(f.region), system: text(f.system),
        prompt: text(f.prompt), max_tokens: num(f.max_tokens), temperature: num(f.temperature),
      };
    case 'lambda':
      return { type: 'lambda', function: f.function, stream: f.stream };
    default:
      return { type: 'echo' };
  }
}

function RunnerFields({ f, set }) {
  const bind = (name) => ({ value: f[name], onInput: (e) => set({ ...f, [name]: e.target.value }) });
  const prompts = html`
    <${TextArea} label="System prompt" field="runner.system" rows="3" ...${bind('system')} hint="MiniJinja; may use input, message and trigger." />
    <${TextArea} label="Prompt" field="runner.prompt" rows="3" ...${bind('prompt')} hint="Default: the run's message." />
    <div class="row">
      <${Input} label="Max tokens" field="runner.max_tokens" type="number" min="1" ...${bind('max_tokens')} />
      <${Input} label="Temperature" field="runner.temperature" type="number" step="0.1" min="0" max="2" ...${bind('temperature')} />
    </div>`;
  switch (f.type) {
    case 'http':
      return html`<${Input} label="Agent URL" field="runner.url" type="url" required ...${bind('url')} hint="hookrun POSTs each run here as JSON, signed (Standard Webhooks)." />
        <${TextArea} label="Headers" field="runner.headers" rows="2" ...${bind('headers')}
          hint=${f.headerNames.length
            ? `Stored: ${f.headerNames.join(', ')} (values are write-only). Leave empty to keep them; one "Name: value" per line replaces them.`
            : 'One "Name: value" per line, e.g. Authorization: Bearer …; values are write-only.'} />`;
    case 'openai':
      return html`<${Input} label="Model" field="runner.model" required ...${bind('model')} hint="e.g. gpt-4o-mini" />
        <${Input} label="Base URL" field="runner.base_url" type="url" ...${bind('base_url')} hint="Default https://api.openai.com/v1; any compatible server." />
        <${Input} label="API key" field="runner.api_key" type="password" autocomplete="off" ...${bind('api_key')}
          hint=${f.has_api_key ? 'A key is stored (write-only). Leave empty to keep it.' : 'Write-only: never shown again.'} />
        ${prompts}`;
    case 'bedrock':
      return html`<${Input} label="Model id" field="runner.model_id" required ...${bind('model_id')} hint="e.g. anthropic.claude-3-haiku-20240307-v1:0" />
        <${Input} label="Region" field="runner.region" ...${bind('region')} hint="Default: the process's region." />
        ${prompts}`;
    case 'lambda':
      return html`<${Input} label="Function" field="runner.function" required ...${bind('function')} hint="Name or ARN; the executor may invoke only the stack's AgentFunctionArns." />
        <${Check} label="Stream its answer (InvokeWithResponseStream)" checked=${f.stream} onChange=${(e) => set({ ...f, stream: e.target.checked })} />`;
    default:
      return html`<p class="muted">The echo runner needs nothing else: each run's output is its message.</p>`;
  }
}

export function AgentForm({ id }) {
  const editing = Boolean(id);
  const { form, setForm, bind, error, busy, onSubmit } = useEditor(
    [id],
    editing,
    () => ({ name: '', enabled: true, timeout_seconds: '', max_concurrent_runs: '', concurrency_key: '', on_conflict: 'queue', runner: runnerForm() }),
    () => get(`/api/v1/agents/${id}`).then((a) => ({
      name: a.name, enabled: a.enabled, timeout_seconds: a.timeout_seconds ?? '',
      max_concurrent_runs: a.max_concurrent_runs ?? '', concurrency_key: a.concurrency?.key ?? '',
      on_conflict: a.concurrency?.on_conflict ?? 'queue', runner: runnerForm(a.runner),
    })),
  );
  const [created, setCreated] = useState(null);
  if (!form) return html`<${FormLoading} title=${editing ? 'Edit agent' : 'New agent'} error=${error} />`;
  const submit = onSubmit(async () => {
    const body = {
      name: form.name,
      enabled: form.enabled,
      runner: runnerBody(form.runner),
      timeout_seconds: num(form.timeout_seconds),
      max_concurrent_runs: num(form.max_concurrent_runs) ?? (editing ? null : undefined),
      concurrency: form.concurrency_key.trim()
        ? { key: form.concurrency_key.trim(), on_conflict: form.on_conflict }
        : (editing ? null : undefined),
    };
    if (editing) {
      await patch(`/api/v1/agents/${id}`, body);
      navigate(`/agents/${id}`);
    } else {
      setCreated(await post('/api/v1/agents', body));
    }
  });
  return html`<${Page} title=${editing ? `Edit ${form.name}` : 'New agent'}>
    <${Form} error=${error} onSubmit=${submit}>
      <${Input} label="Name" field="name" required ...${bind('name')} />
      <${Select} label="Runner" options=${RUNNERS} value=${form.runner.type}
        onChange=${(e) => setForm({ ...form, runner: { ...form.runner, type: e.target.value } })} />
      <fieldset><legend>${form.runner.type} runner</legend>
        <${RunnerFields} f=${form.runner} set=${(runner) => setForm({ ...form, runner })} />
      </fieldset>
      <details><summary>Limits and concurrency</summary>
        <div class="row">
          <${Input} label="Timeout (seconds)" field="timeout_seconds" type="number" min="1" ...${bind('timeout_seconds')} hint="Default 300." />
          <${Input} label="Max concurrent runs" field="max_concurrent_runs" type="number" min="1" ...${bind('max_concurrent_runs')} hint="Empty: the workspace's limit only." />
        </div>
        <div class="row">
          <${Input} label="Concurrency key" field="concurrency" ...${bind('concurrency_key')} hint="Runs with the same value never overlap: /json/pointer, header:Name or {{ template }}." />
          <${Select} label="When a run of the key is going" options=${[['queue', 'queue: wait its turn'], ['skip', 'skip the new call'], ['replace', 'replace: cancel the older run']]} ...${bind('on_conflict')} />
        </div>
      </details>
      <${Check} label="Enabled (takes calls)" checked=${form.enabled} onChange=${(e) => setForm({ ...form, enabled: e.target.checked })} />
      <${Alert} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${editing ? 'Save agent' : 'Create agent'}</button>
        <${Link} to=${editing ? `/agents/${id}` : '/agents'} class="button">Cancel<//>
      </div>
    <//>
    ${created && html`<${CreatedAgentDialog} agent=${created} onClose=${() => navigate(`/agents/${created.id}`)} />`}
  <//>`;
}

/** `X-Signature` of `body`: hex HMAC-SHA256 keyed by the webhook secret. */
async function signHex(secret, body) {
  if (!globalThis.crypto?.subtle) return null;
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', key, enc.encode(body));
  return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function curlFor(url, signature) {
  const sig = signature
    ? `-H 'X-Signature: ${signature}'`
    : `-H "X-Signature: $(printf '%s' '${SAMPLE_BODY}' | openssl dgst -sha256 -hmac "$HOOKRUN_WEBHOOK_SECRET" -r | cut -d' ' -f1)"`;
  return `curl -sS -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  ${sig} \\\n  -d '${SAMPLE_BODY}'`;
}

function CreatedAgentDialog({ agent, onClose }) {
  const [signature, setSignature] = useState(null);
  useEffect(() => { signHex(agent.webhook_secret, SAMPLE_BODY).then(setSignature, () => setSignature(null)); }, []);
  const curl = curlFor(agent.webhook_url, signature);
  return html`<${SecretsDialog} title=${`Agent ${agent.name} created`} onClose=${onClose}
    items=${[
      { label: 'Webhook secret', value: agent.webhook_secret },
      { label: 'Signing secret', value: agent.signing_secret },
    ]}
    note=${html`<p class="small">The webhook secret signs calls to the agent's URL; hookrun signs its calls to an http agent with the signing secret. Try it:</p>
      <${Code} label="A signed curl call" value=${curl} />
      <${CopyButton} text=${curl} label="curl command" />`} />`;
}

export function AgentPage({ id }) {
  const agent = useLoad(() => get(`/api/v1/agents/${id}`), [id]);
  const hooks = useLoad(() => get(`/api/v1/agents/${id}/webhook`), [id]);
  const triggers = useLoad(() => all('/api/v1/webhook-triggers', { agent_id: id }), [id]);
  const [shown, setShown] = useState(null);
  return html`<${Loaded} state=${agent}>${(a) => html`<${Page} title=${a.name}
    actions=${html`
      <${Link} to=${`/agents/${id}/edit`} class="button">Edit agent<//>
      <${Link} to=${`/agents/${id}/triggers/new`} class="button">New trigger<//>
      <${Link} to="/runs" query=${{ agent_id: id }} class="button">Runs<//>
      <${Link} to="/runs/replay" query=${{ agent_id: id }} class="button">Replay failed runs<//>`}>
    <${Facts} rows=${[
      ['Id', html`<span class="mono">${a.id}</span>`],
      ['Runner', runnerSummary(a.runner)],
      ['State', a.enabled ? 'enabled' : 'disabled'],
      ['Timeout', `${a.timeout_seconds} s`],
      ['Max concurrent runs', a.max_concurrent_runs ?? 'no limit of its own'],
      ['Concurrency key', a.concurrency ? `${a.concurrency.key} (${a.concurrency.on_conflict})` : null],
      ['Version', a.version],
      ['Created', html`<${Time} t=${a.created_at} />`],
    ]} />
    <h2>Webhook</h2>
    <${Loaded} state=${hooks}>${(w) => html`<ul class="urls">${w.urls.map((u) => html`<li>
        <div><span class="method">${u.method}</span> <code class="break">${u.url}</code> <${CopyButton} text=${u.url} label=${`${u.name || 'URL'}`} /></div>
        <div class="muted small">${u.auth}</div></li>`)}</ul>
      <p class="small">A signed call (the secret in <code>HOOKRUN_WEBHOOK_SECRET</code>):</p>
      <${Code} label="A signed curl call" value=${curlFor(a.webhook_url, null)} />
      <${CopyButton} text=${curlFor(a.webhook_url, null)} label="curl command" />`}<//>
    <h2>Triggers</h2>
    <${Loaded} state=${triggers}>${(t) => t.data.length === 0
      ? html`<${Empty}>No triggers. <${Link} to=${`/agents/${id}/triggers/new`}>Add a trigger<//> for a token URL, a provider's signature (GitHub, Stripe, Slack) or an input mapping.<//>`
      : html`<div class="table-wrap"><table><caption class="sr-only">Triggers of ${a.name}</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Signature</th><th scope="col">State</th><th scope="col">Last used</th></tr></thead>
          <tbody>${t.data.map((tr) => html`<tr>
            <td><${Link} to=${`/triggers/${tr.id}`}>${tr.name}<//></td>
            <td>${tr.has_secret ? (tr.signature?.scheme || 'hmac') : 'none'}</td>
            <td>${tr.is_active ? 'active' : 'disabled'}</td>
            <td><${Time} t=${tr.last_used_at} /></td></tr>`)}</tbody></table></div>`}<//>
    <h2>Secrets</h2>
    <div class="actions">
      <${ConfirmButton} label="Rotate webhook secret" question="A new webhook secret is made and shown once; the current one keeps working for the grace window (default 24 hours)."
        onConfirm=${async () => { const r = await post(`/api/v1/agents/${id}/rotate-secret`); setShown({ title: 'New webhook secret', items: [{ label: 'Webhook secret', value: r.webhook_secret }], until: r.previous_valid_until }); }} />
      <${ConfirmButton} label="Rotate signing secret" question="A new signing secret is made and shown once; during the grace window hookrun's calls carry a signature by the previous one too."
        onConfirm=${async () => { const r = await post(`/api/v1/agents/${id}/rotate-signing-secret`); setShown({ title: 'New signing secret', items: [{ label: 'Signing secret', value: r.signing_secret }], until: r.previous_valid_until }); }} />
      <${ConfirmButton} label="Delete agent" danger question=${`Delete ${a.name}, its triggers and its secret? Its URLs stop at once.`}
        onConfirm=${async () => { await del(`/api/v1/agents/${id}`); navigate('/agents'); }} />
    </div>
    ${shown && html`<${SecretsDialog} title=${shown.title} items=${shown.items} onClose=${() => setShown(null)}
      note=${shown.until && html`<p class="small">The previous one works until <${Time} t=${shown.until} />.</p>`} />`}
  <//>`}<//>`;
}

export function runnerSummary(r) {
  switch (r.type) {
    case 'http': return html`http → <code class="break">${r.url}</code>`;
    case 'openai': return `openai · ${r.model}${r.has_api_key ? ` · key …${r.api_key_hint ?? ''}` : ''}`;
    case 'bedrock': return `bedrock · ${r.model_id}`;
    case 'lambda': return `lambda · ${r.function}${r.stream ? ' (streamed)' : ''}`;
    default: return r.type;
  }
}

