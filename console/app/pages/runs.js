import { html, useEffect, useRef, useState } from '../lib/html.js';
import { all, get, post } from '../lib/api.js';
import { follow } from '../lib/live.js';
import { navigate, useRoute } from '../lib/route.js';
import { duration, json, toRfc3339 } from '../lib/format.js';
import {
  ActionButton, Alert, Code, ConfirmButton, Empty, Facts, Input, Link, Loaded, Page, Pager,
  Select, Status, Time, useLoad,
  Form, choices, fieldError,
} from '../ui.js';

const STATUSES = [['', 'any status'], ['queued', 'queued'], ['running', 'running'], ['succeeded', 'succeeded'], ['failed', 'failed'], ['cancelled', 'cancelled'], ['failed,cancelled', 'failed or cancelled']];
const TRIGGER_TYPES = [['', 'any way'], ['WEBHOOK', 'webhook'], ['TOKEN', 'token'], ['SCHEDULE', 'schedule'], ['API', 'API'], ['TEST', 'test']];
const FINISHED = ['succeeded', 'failed', 'cancelled'];

/**
 * A run's events as they come: its status and log lines, live;
 * `onRunEvent(event)` hears each `run.*` event too.
 */
export function useRunEvents(runId, onRunEvent) {
  const [state, setState] = useState({ status: null, lines: [], link: 'connecting' });
  const ended = useRef(onRunEvent);
  ended.current = onRunEvent;
  useEffect(() => {
    setState({ status: null, lines: [], link: 'connecting' });
    return follow({ run_id: runId }, (ev) => {
      setState((s) => {
        if (ev.type === 'agent.log') return { ...s, lines: [...s.lines, { seq: ev.seq, time: ev.time, ...ev.data }] };
        return { ...s, status: ev.data?.status ?? s.status, summary: ev.data };
      });
      if (ev.type.startsWith('run.') && ended.current) ended.current(ev);
    }, (link, detail) => setState((s) => ({ ...s, link, linkDetail: detail })));
  }, [runId]);
  return state;
}

function LinkState({ link, detail }) {
  const text = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting… (resumes where it stopped)', error: `not live: ${detail ?? ''}` }[link] ?? link;
  return html`<span class=${`link link-${link}`} role="status">${text}</span>`;
}

export function LogView({ lines, link, detail, heading = 'h3' }) {
  const box = useRef(null);
  useEffect(() => {
    const b = box.current;
    if (b) b.scrollTop = b.scrollHeight;
  }, [lines.length]);
  return html`<div class="log-head"><${heading}>Log<//><${LinkState} link=${link} detail=${detail} /></div>
    <div class="log" ref=${box} role="log" aria-label="Run log" tabindex="0">
      ${lines.length === 0 ? html`<p class="muted">No log lines yet.</p>` : html`<ol>
        ${lines.map((l) => html`<li key=${l.seq} class=${`lvl-${l.level}`}><span class="lvl">${l.level}</span> <span class="txt">${l.line}</span></li>`)}
      </ol>`}
    </div>`;
}

/** A run's status and log, live (the Test panel's answer). */
export function LiveRun({ runId }) {
  const ev = useRunEvents(runId);
  return html`<div class="live-run">
    <p>Status: ${ev.status ? html`<${Status} value=${ev.status} />` : html`<span class="muted">waiting for its first event…</span>`}
      ${ev.summary?.error && html` <span class="alert-text">${ev.summary.error}</span>`}</p>
    <${LogView} lines=${ev.lines} link=${ev.link} detail=${ev.linkDetail} />
  </div>`;
}

function matches(summary, query) {
  if (query.status && !query.status.split(',').includes(summary.status)) return false;
  if (query.trigger_type && summary.trigger_type !== query.trigger_type) return false;
  if (query.trigger_id && summary.trigger_id !== query.trigger_id) return false;
  return true;
}

export function Runs() {
  const { query } = useRoute();
  const agents = useLoad(() => all('/api/v1/agents'), []);
  const filter = {
    agent_id: query.agent_id, status: query.status, trigger_type: query.trigger_type,
    trigger_id: query.trigger_id, schedule_id: query.schedule_id,
    created_after: toRfc3339(query.since), created_before: toRfc3339(query.until),
  };
  const key = JSON.stringify([filter, query.cursor]);
  const state = useLoad(() => get('/api/v1/runs', { ...filter, limit: 25, cursor: query.cursor }), [key]);
  const [link, setLink] = useState('connecting');
  // Live: a known run's row changes in place; a new run that fits the
  // filter reloads the first page.
  const pending = useRef(null);
  useEffect(() => {
    const stop = follow(query.agent_id ? { agent_id: query.agent_id } : {}, (ev) => {
      if (!ev.type.startsWith('run.')) return;
      let known = false;
      state.setData((page) => {
        if (!page) return page;
        const data = page.data.map((r) => {
          if (r.id !== ev.run_id) return r;
          known = true;
          return { ...r, ...ev.data };
        });
        return { ...page, data };
      });
      if (!known && !query.cursor && !query.until && matches(ev.data, query)) {
        clearTimeout(pending.current);
        pending.current = setTimeout(() => state.reload(), 250);
      }
    }, setLink);
    return () => { stop(); clearTimeout(pending.current); };
  }, [key]);
  const set = (name) => (e) => navigate('/runs', { ...query, [name]: e.target.value, cursor: undefined });
  const agentOptions = choices(agents.data, ['', 'all agents']);
  const names = Object.fromEntries(((agents.data?.data) || []).map((a) => [a.id, a.name]));
  return html`<${Page} title="Runs" actions=${html`<${LinkState} link=${link} /><${Link} to="/runs/replay" query=${{ agent_id: query.agent_id }} class="button">Replay failed runs<//>`}>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filter runs">
      <${Select} label="Agent" options=${agentOptions} value=${query.agent_id ?? ''} onChange=${set('agent_id')} />
      <${Select} label="Status" options=${STATUSES} value=${query.status ?? ''} onChange=${set('status')} />
      <${Select} label="Started by" options=${TRIGGER_TYPES} value=${query.trigger_type ?? ''} onChange=${set('trigger_type')} />
      <${Input} label="Created after" type="datetime-local" value=${query.since ?? ''} onChange=${set('since')} />
      <${Input} label="Created before" type="datetime-local" value=${query.until ?? ''} onChange=${set('until')} />
      ${(query.trigger_id || query.schedule_id) && html`<p class="small">Only the runs of ${query.trigger_id ? 'trigger' : 'schedule'} <code>${query.trigger_id || query.schedule_id}</code>. <${Link} to="/runs">Show all<//></p>`}
    </form>
    <${Loaded} state=${state}>${(page) => page.data.length === 0
      ? html`<${Empty}>${Object.values(filter).some(Boolean) ? 'No runs match these filters.' : 'No runs yet. Open a trigger and press Test, or call an agent\'s webhook URL.'}<//>`
      : html`<div class="table-wrap"><table><caption class="sr-only">Runs</caption>
        <thead><tr><th scope="col">Run</th><th scope="col" class="opt">Agent</th><th scope="col">Status</th><th scope="col" class="opt">Started by</th><th scope="col" class="opt">Created</th><th scope="col" class="opt">Duration</th></tr></thead>
        <tbody>${page.data.map((r) => html`<tr key=${r.id}>
          <td><${Link} to=${`/runs/${r.id}`} class="mono">${r.id}<//><div class="small muted phone-only">${names[r.agent_id] ?? ''} · <${Time} t=${r.created_at} /></div></td>
          <td class="opt">${names[r.agent_id] ?? html`<span class="mono">${r.agent_id}</span>`}</td>
          <td><${Status} value=${r.status} />${r.error ? html`<div class="small alert-text clip">${r.error}</div>` : ''}</td>
          <td class="opt">${r.trigger_type}</td>
          <td class="opt"><${Time} t=${r.created_at} /></td>
          <td class="opt">${duration(r.duration_ms)}</td></tr>`)}</tbody></table></div>
        <${Pager} path="/runs" query=${query} next=${page.next_cursor} />`}<//>
  <//>`;
}

export function RunPage({ id }) {
  const state = useLoad(() => get(`/api/v1/runs/${id}`), [id]);
  // Each run event updates what the page shows at once; the end reloads
  // the run for its output.
  const ev = useRunEvents(id, (e) => {
    state.setData((r) => r && { ...r, ...e.data });
    if (['run.succeeded', 'run.failed', 'run.cancelled'].includes(e.type)) state.reload();
  });
  return html`<${Loaded} state=${state}>${(r) => {
    const status = r.status;
    return html`<${Page} title=${`Run ${r.id}`}
      actions=${html`
        ${!FINISHED.includes(status) && html`<${ActionButton} label="Cancel run" action=${async () => { await post(`/api/v1/runs/${id}/cancel`); await state.reload(); }} />`}
        ${FINISHED.includes(status) && html`<${ActionButton} label="Retry run" primary action=${async () => { const n = await post(`/api/v1/runs/${id}/retry`); navigate(`/runs/${n.id}`); }} />`}`}>
      <${Facts} rows=${[
        ['Status', html`<${Status} value=${status} />`],
        ['Agent', html`<${Link} to=${`/agents/${r.agent_id}`} class="mono">${r.agent_id}<//> (version ${r.agent_version})`],
        ['Started by', html`${r.trigger_type}${r.trigger_id ? html` · <${Link} to=${`/triggers/${r.trigger_id}`} class="mono">${r.trigger_id}<//>` : ''}${r.schedule_id ? html` · <${Link} to=${`/schedules/${r.schedule_id}`} class="mono">${r.schedule_id}<//>` : ''}`],
        ['Attempt', r.attempt],
        ['Created', html`<${Time} t=${r.created_at} />`],
        ['Started', html`<${Time} t=${r.started_at} />`],
        ['Completed', html`<${Time} t=${r.completed_at} />`],
        ['Duration', duration(r.duration_ms)],
        r.usage && ['Usage', `${r.usage.model ?? ''} · ${r.usage.input_tokens ?? '?'} in, ${r.usage.output_tokens ?? '?'} out tokens`],
        r.concurrency_key && ['Concurrency key', html`<code>${r.concurrency_key}</code>`],
        r.cancel_reason && ['Cancelled', html`${r.cancel_reason}${r.replaced_by ? html` by <${Link} to=${`/runs/${r.replaced_by}`} class="mono">${r.replaced_by}<//>` : ''} <${Time} t=${r.cancelled_at} />`],
        r.retry_of && ['Retry of', html`<${Link} to=${`/runs/${r.retry_of}`} class="mono">${r.retry_of}<//>`],
        r.retries?.length > 0 && ['Retries', html`${r.retries.map((x) => html`<${Link} to=${`/runs/${x}`} class="mono">${x}<//> `)}`],
      ]} />
      ${r.error && html`<h2>Error</h2><p class="alert">${r.error}</p>`}
      <${LogView} heading="h2" lines=${ev.lines} link=${ev.link} detail=${ev.linkDetail} />
      <h2>Output</h2>
      ${r.output === undefined || r.output === null ? html`<p class="muted">${FINISHED.includes(status) ? 'None.' : 'Not yet: the run has not finished.'}</p>` : html`<${Code} label="Output" value=${json(r.output)} />`}
      <h2>Input</h2>
      <${Code} label="Input" value=${json(r.input)} />
      <h3>Message</h3>
      <${Code} label="Message" value=${r.message} />
    <//>`;
  }}<//>`;
}

/**
 * Replays every matching run: a call retries at most 1,000, and its
 * `next_cursor` goes on from there (at most 50 calls here).
 */
async function replayAll(request) {
  const retries = [];
  let cursor;
  for (let calls = 0; calls < 50; calls += 1) {
    const answer = await post('/api/v1/runs/replay', { ...request, cursor });
    retries.push(...answer.retries);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return { retries, more: Boolean(cursor) };
}

export function Replay() {
  const { query } = useRoute();
  const agents = useLoad(() => all('/api/v1/agents'), []);
  const [form, setForm] = useState({ agent_id: query.agent_id ?? '', status: 'failed', since: '', until: '' });
  const [count, setCount] = useState(null);
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  const body = (dry) => ({
    agent_id: form.agent_id, status: form.status.split(','), dry_run: dry,
    created_after: toRfc3339(form.since), created_before: toRfc3339(form.until),
  });
  const change = (name) => (e) => { setForm({ ...form, [name]: e.target.value }); setCount(null); setDone(null); };
  const dry = async (e) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (!form.agent_id) { setError(fieldError('agent_id', 'Choose the agent whose runs to replay.')); return; }
    try { setCount(await post('/api/v1/runs/replay', body(true))); } catch (err) { setError(err); }
  };
  const agentOptions = choices(agents.data, ['', 'choose an agent']);
  return html`<${Page} title="Replay runs">
    <p>Each matching finished run is retried once: a new run with the same input, through the agent as it is now. Count them first.</p>
    <${Form} error=${error} onSubmit=${dry}>
      <div class="row">
        <${Select} label="Agent" field="agent_id" options=${agentOptions} value=${form.agent_id} onChange=${change('agent_id')} />
        <${Select} label="Status" options=${STATUSES.filter(([v]) => FINISHED.includes(v) || v === 'failed,cancelled')} value=${form.status} onChange=${change('status')} />
      </div>
      <div class="row">
        <${Input} label="Created after" field="created_after" type="datetime-local" value=${form.since} onChange=${change('since')} />
        <${Input} label="Created before" field="created_before" type="datetime-local" value=${form.until} onChange=${change('until')} />
      </div>
      <${Alert} error=${error} />
      <div class="actions"><button type="submit">Count runs</button></div>
    <//>
    ${count && html`<div role="status" class="panel">
      <p><strong>${count.count}${count.truncated ? '+' : ''}</strong> ${count.count === 1 ? 'run matches' : 'runs match'}${count.truncated ? ' (the first 1,000 are replayed per call)' : ''}.</p>
      ${count.count > 0 && html`<${ConfirmButton} label=${`Replay ${count.count} runs`} question=${`Retry ${count.count} runs of this agent? Each becomes a new run.`}
        onConfirm=${async () => setDone(await replayAll(body(false)))} />`}
    </div>`}
    ${done && html`<div role="status" class="panel"><p>${done.retries.filter((r) => r.created).length} retries made.${done.more ? ' More match: count again to go on.' : ''}</p>
      <ul>${done.retries.slice(0, 20).map((r) => html`<li><${Link} to=${`/runs/${r.run_id}`} class="mono">${r.run_id}<//> retries <span class="mono">${r.retry_of}</span></li>`)}</ul>
      <${Link} to="/runs" query=${{ agent_id: form.agent_id }}>See the agent's runs<//></div>`}
  <//>`;
}
