import { html, useEffect, useState } from '../lib/html.js';
import { all, get, post, patch, del } from '../lib/api.js';
import { navigate, useRoute } from '../lib/route.js';
import { duration, json } from '../lib/format.js';
import {
  ActionButton, Alert, Check, Code, ConfirmButton, Empty, Facts, Input, Link, Loaded, Page,
  Pager, Select, Status, TextArea, Time, useLoad,
  Form, FormLoading, choices, fieldError, useEditor,
} from '../ui.js';

const OVERLAP = [['skip', 'skip the fire while a run is going'], ['queue_one', 'queue one run behind it'], ['allow', 'allow overlapping runs']];
const CATCH_UP = [['latest', 'run the latest missed fire (under an hour old)'], ['none', 'skip missed fires']];
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const zones = () => (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : ['UTC']);

export function FireTimes({ times, empty }) {
  if (!times || times.length === 0) return html`<p class="muted">${empty}</p>`;
  return html`<ol class="fires">${times.map((f) => html`<li><time datetime=${f.utc}>${f.local.replace('T', ' ')}</time> <span class="muted small">(${f.utc} UTC)</span></li>`)}</ol>`;
}

export function Schedules() {
  const { query } = useRoute();
  const state = useLoad(() => get('/api/v1/schedules', { limit: 50, cursor: query.cursor }), [query.cursor]);
  return html`<${Page} title="Schedules" actions=${html`<${Link} to="/schedules/new" class="button primary">New schedule<//>`}>
    <${Loaded} state=${state}>${(page) => page.data.length === 0 && !query.cursor
      ? html`<${Empty}>No schedules. <${Link} to="/schedules/new">Create a schedule<//> to run an agent on a cron, in your time zone.<//>`
      : html`<div class="table-wrap"><table><caption class="sr-only">Schedules</caption>
        <thead><tr><th scope="col">Name</th><th scope="col" class="opt">Cron</th><th scope="col">State</th><th scope="col">Next fire</th><th scope="col" class="opt">Last fire</th></tr></thead>
        <tbody>${page.data.map((s) => html`<tr>
          <td><${Link} to=${`/schedules/${s.id}`}>${s.name}<//></td>
          <td class="opt"><code>${s.cron}</code> <span class="small muted">${s.timezone}</span></td>
          <td>${s.enabled ? 'active' : 'paused'}</td>
          <td>${s.next_fire_times[0] ? html`<time datetime=${s.next_fire_times[0].utc}>${s.next_fire_times[0].local.replace('T', ' ')}</time>` : '—'}</td>
          <td class="opt"><${Time} t=${s.last_fired_at} /></td></tr>`)}</tbody></table></div>
        <${Pager} path="/schedules" query=${query} next=${page.next_cursor} />`}<//>
  <//>`;
}

/** The next fires of what the form says, from the server's own parser. */
function usePreview(cron, timezone) {
  const [preview, setPreview] = useState({ times: null, error: null });
  useEffect(() => {
    if (!cron.trim()) {
      setPreview({ times: null, error: null });
      return undefined;
    }
    let live = true;
    const t = setTimeout(() => {
      get('/api/v1/schedules/preview', { cron, timezone })
        .then((r) => live && setPreview({ times: r.next_fire_times, error: null }))
        .catch((e) => live && setPreview({ times: null, error: e }));
    }, 300);
    return () => { live = false; clearTimeout(t); };
  }, [cron, timezone]);
  return preview;
}

export function ScheduleForm({ id }) {
  const editing = Boolean(id);
  const { query } = useRoute();
  const agents = useLoad(() => all('/api/v1/agents'), []);
  const { form, setForm, bind, error, busy, onSubmit } = useEditor(
    [id],
    editing,
    () => ({ name: '', agent_id: query.agent_id ?? '', trigger_id: '', cron: '0 9 * * 1-5', timezone: browserZone(), payload: '{}', overlap: 'skip', catch_up: 'latest', enabled: true }),
    () => get(`/api/v1/schedules/${id}`).then((s) => ({
      name: s.name, agent_id: s.agent_id, trigger_id: s.trigger_id ?? '', cron: s.cron, timezone: s.timezone,
      payload: JSON.stringify(s.payload, null, 2), overlap: s.overlap, catch_up: s.catch_up, enabled: s.enabled,
    })),
  );
  const triggers = useLoad(() => (form?.agent_id ? all('/api/v1/webhook-triggers', { agent_id: form.agent_id }) : Promise.resolve({ data: [] })), [form?.agent_id]);
  const preview = usePreview(form?.cron ?? '', form?.timezone ?? 'UTC');
  if (!form) return html`<${FormLoading} title=${editing ? 'Edit schedule' : 'New schedule'} error=${error} />`;
  const submit = onSubmit(async () => {
    let payload;
    try {
      payload = form.payload.trim() ? JSON.parse(form.payload) : {};
    } catch (err) {
      throw fieldError('payload', `Payload: not JSON (${err.message})`);
    }
    const body = { name: form.name, cron: form.cron, timezone: form.timezone, payload, overlap: form.overlap, catch_up: form.catch_up, enabled: form.enabled };
    if (editing) {
      await patch(`/api/v1/schedules/${id}`, body);
      navigate(`/schedules/${id}`);
    } else {
      if (form.trigger_id) body.trigger_id = form.trigger_id;
      else body.agent_id = form.agent_id || undefined;
      const s = await post('/api/v1/schedules', body);
      navigate(`/schedules/${s.id}`);
    }
  });
  const agentOptions = choices(agents.data, ['', 'choose an agent']);
  const triggerOptions = choices(triggers.data, ['', 'none: the payload goes to the agent as it is']);
  return html`<${Page} title=${editing ? `Edit ${form.name}` : 'New schedule'}>
    <${Form} error=${error} onSubmit=${submit}>
      <${Input} label="Name" field="name" required ...${bind('name')} />
      ${editing
        ? html`<p>Runs <${Link} to=${`/agents/${form.agent_id}`} class="mono">${form.agent_id}<//>${form.trigger_id ? html` through trigger <span class="mono">${form.trigger_id}</span>` : ''}.</p>`
        : html`<div class="row">
          <${Select} label="Agent" field="agent_id" options=${agentOptions} value=${form.agent_id} onChange=${(e) => setForm({ ...form, agent_id: e.target.value, trigger_id: '' })} />
          <${Select} label="Through trigger" field="trigger_id" options=${triggerOptions} ...${bind('trigger_id')} hint="Its input mapping and event filter apply." />
        </div>`}
      <div class="row">
        <${Input} label="Cron" field="cron" required class="mono" ...${bind('cron')} hint="Five fields (0 9 * * 1-5), @daily, cron(…) or rate(15 minutes)." />
        <${Input} label="Time zone" field="timezone" list="tz-list" ...${bind('timezone')} hint="IANA name; daylight saving follows it." />
        <datalist id="tz-list">${zones().map((z) => html`<option value=${z}></option>`)}</datalist>
      </div>
      <section class="panel" aria-labelledby="preview-title">
        <h2 id="preview-title">Next fire times</h2>
        ${preview.error ? html`<${Alert} error=${preview.error} />` : html`<${FireTimes} times=${preview.times} empty="Enter a cron expression to see when it fires." />`}
      </section>
      <${TextArea} label="Payload" field="payload" rows="4" class="mono" ...${bind('payload')} hint="A JSON object; each run gets it with scheduled_time added." />
      <div class="row">
        <${Select} label="While a run is going" options=${OVERLAP} ...${bind('overlap')} />
        <${Select} label="Missed fires" options=${CATCH_UP} ...${bind('catch_up')} />
      </div>
      <${Check} label="Active (fires)" checked=${form.enabled} onChange=${(e) => setForm({ ...form, enabled: e.target.checked })} />
      <${Alert} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${editing ? 'Save schedule' : 'Create schedule'}</button>
        <${Link} to=${editing ? `/schedules/${id}` : '/schedules'} class="button">Cancel<//>
      </div>
    <//>
  <//>`;
}

export function SchedulePage({ id }) {
  const state = useLoad(() => get(`/api/v1/schedules/${id}`), [id]);
  const runs = useLoad(() => get('/api/v1/runs', { schedule_id: id, limit: 10 }), [id]);
  return html`<${Loaded} state=${state}>${(s) => html`<${Page} title=${s.name}
    actions=${html`<${Link} to=${`/schedules/${id}/edit`} class="button">Edit schedule<//>
      ${s.enabled
        ? html`<${ActionButton} label="Pause" action=${async () => { await post(`/api/v1/schedules/${id}/pause`); await state.reload(); }} />`
        : html`<${ActionButton} label="Resume" primary action=${async () => { await post(`/api/v1/schedules/${id}/resume`); await state.reload(); }} />`}`}>
    <${Facts} rows=${[
      ['Id', html`<span class="mono">${s.id}</span>`],
      ['State', html`<${Status} value=${s.enabled ? 'active' : 'paused'} />`],
      ['Cron', html`<code>${s.cron}</code> in ${s.timezone}`],
      ['Runs', html`<${Link} to=${`/agents/${s.agent_id}`} class="mono">${s.agent_id}<//>${s.trigger_id ? html` through <${Link} to=${`/triggers/${s.trigger_id}`} class="mono">${s.trigger_id}<//>` : ''}`],
      ['While a run is going', s.overlap],
      ['Missed fires', s.catch_up],
      ['Last fire', s.last_fired_at ? html`<${Time} t=${s.last_fired_at} />${s.last_run_id ? html` · <${Link} to=${`/runs/${s.last_run_id}`} class="mono">${s.last_run_id}<//>` : ''}` : null],
      ['Skipped fires', s.skipped_fires ? html`${s.skipped_fires} (last <${Time} t=${s.last_skipped_at} />: ${s.last_skip_reason})` : '0'],
    ]} />
    <h2>Next fire times</h2>
    <${FireTimes} times=${s.next_fire_times} empty="None while paused: resume it to fire again." />
    <h2>Payload</h2>
    <${Code} label="Payload" value=${json(s.payload)} />
    <div class="page-head"><h2>Runs</h2><${Link} to="/runs" query=${{ schedule_id: id }}>All its runs<//></div>
    <${Loaded} state=${runs}>${(page) => page.data.length === 0
      ? html`<${Empty}>No runs yet: the first comes at its next fire time.<//>`
      : html`<ul class="plain">${page.data.map((r) => html`<li><${Link} to=${`/runs/${r.id}`} class="mono">${r.id}<//> <${Status} value=${r.status} /> <${Time} t=${r.created_at} /> ${duration(r.duration_ms)}</li>`)}</ul>`}<//>
    <div class="actions"><${ConfirmButton} label="Delete schedule" danger question=${`Delete ${s.name}? It fires no more.`}
      onConfirm=${async () => { await del(`/api/v1/schedules/${id}`); navigate('/schedules'); }} /></div>
  <//>`}<//>`;
}
