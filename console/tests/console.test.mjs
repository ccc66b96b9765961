// The web console in a real browser: Debian's Chromium, driven by
// playwright-core, against `hookrun serve`. Elements are found by role and
// accessible name, as a user (or a screen reader) finds them. Every test
// fails on a console error or a failed request it did not provoke, and
// saves a screenshot under target/console-screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_KEY, apiClient, axeViolations, launchChromium, loaded, openPage, overflowsSideways, screenshot,
  signIn, startFakes, startHookrun,
} from './harness.mjs';

let hookrun;
let fakes;
let browser;
let api;

before(async () => {
  hookrun = await startHookrun();
  fakes = await startFakes();
  browser = await launchChromium();
  api = apiClient(hookrun.base);
});

after(async () => {
  await browser?.close();
  await fakes?.stop();
  await hookrun?.stop();
});

/** Runs `body(page)` on a fresh page; then no unexpected problem may remain. */
async function withPage(options, body) {
  const page = await openPage(browser, options);
  try {
    await body(page);
    assert.deepEqual(page.problems, [], 'no console errors or failed requests');
  } catch (e) {
    await screenshot(page, `failed-${Date.now()}`).catch(() => {});
    throw e;
  } finally {
    await page.closeAll();
  }
}

async function accessible(page, name) {
  assert.deepEqual(await axeViolations(page), [], `${name}: no serious or critical axe violations`);
}

async function agentVia(runnerUrl, name) {
  return api('POST', '/api/v1/agents', { name, runner: { type: 'http', url: runnerUrl } });
}

test('the page is served with a strict policy, and assets are immutable', async () => {
  const resp = await fetch(`${hookrun.base}/`);
  const csp = resp.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(resp.headers.get('x-frame-options'), 'DENY');
  const page = await resp.text();
  const asset = page.match(/src="(\/assets\/[0-9a-f]+\/main\.js)"/)[1];
  const js = await fetch(hookrun.base + asset, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(js.status, 200);
  assert.match(js.headers.get('cache-control'), /immutable/);
  // The API is where it was.
  assert.equal((await fetch(`${hookrun.base}/healthz`)).status, 200);
});

test('sign in; a wrong key stays on sign-in; a revoked key returns to it', async () => {
  await withPage({ expect: [401] }, async (page) => {
    await page.goto(`${hookrun.base}/`);
    await page.getByRole('heading', { name: 'hookrun console' }).waitFor();
    await accessible(page, 'sign-in');
    await page.getByLabel('Admin key').fill('hka_not_a_real_key_0000000000000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'That key was not accepted' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
    await screenshot(page, 'sign-in-wrong-key');

    // A key that works, then is revoked while the console is open.
    const { key, id } = await api('POST', '/api/v1/admin-keys', { name: 'console test', role: 'admin' });
    await page.getByLabel('Admin key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    await loaded(page);
    assert.ok(!page.url().includes(key), 'the key is never in the URL');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    await api('DELETE', `/api/v1/admin-keys/${id}`);
    await page.getByRole('link', { name: 'Runs' }).click();
    await page.getByRole('heading', { name: 'hookrun console' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'sign in again' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a revoked key is forgotten');
    await screenshot(page, 'sign-in-after-401');

    // Signing in again goes back to the page it was on.
    await page.getByLabel('Admin key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'hookrun console' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign-out clears the key');
  });
});

test('create an agent and a trigger, press Test: the run succeeds with its log live', async () => {
  await withPage({ expect: [400] }, async (page) => {
    await signIn(page, hookrun.base);
    await page.getByRole('link', { name: 'New agent' }).click();
    await page.getByLabel('Name').fill('streamer');
    await page.getByLabel('Runner').selectOption('http');
    // A field the API refuses is marked, explained and focused.
    await page.getByLabel('Agent URL').fill('ftp://example.com/agent');
    await page.getByRole('button', { name: 'Create agent' }).click();
    const url = page.getByLabel('Agent URL');
    await page.locator('[aria-invalid="true"]').waitFor();
    assert.equal(await url.getAttribute('aria-invalid'), 'true');
    assert.ok(await url.evaluate((el) => el === document.activeElement), 'the refused field has focus');
    const described = await url.getAttribute('aria-describedby');
    const note = await page.locator(`#${described.split(' ').pop()}`).textContent();
    assert.match(note, /url/i, 'the message is next to the field');
    await screenshot(page, 'agent-form-field-error');
    await page.getByLabel('Agent URL').fill(`${fakes.url}/agent/stream`);
    await accessible(page, 'agent form');
    await page.getByRole('button', { name: 'Create agent' }).click();
    const dialog = page.getByRole('dialog', { name: 'Agent streamer created' });
    await dialog.waitFor();
    const secret = await dialog.getByLabel('Webhook secret').inputValue();
    assert.match(secret, /^whk_/);
    await dialog.getByRole('button', { name: 'Copy webhook secret' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    assert.match(await dialog.getByLabel('A signed curl call').textContent(), /X-Signature: [0-9a-f]{64}/);
    await screenshot(page, 'agent-created-secrets');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('heading', { name: 'streamer', level: 1 }).waitFor();
    await accessible(page, 'agent page');
    await screenshot(page, 'agent-page');

    await page.getByRole('link', { name: 'New trigger' }).click();
    await page.getByLabel('Name', { exact: true }).fill('from-ci');
    await page.getByLabel('Signature scheme').selectOption('github');
    await page.getByLabel('Event types').fill('push, workflow_run');
    await page.getByLabel('Input mapping').fill('{"branch": "/ref"}');
    await page.getByRole('button', { name: 'Create trigger' }).click();
    const created = page.getByRole('dialog', { name: 'Trigger from-ci created' });
    await created.waitFor();
    assert.match(await created.getByLabel('Token', { exact: true }).inputValue(), /^wht_/);
    assert.ok((await created.getByLabel('Signing secret').inputValue()).length > 10);
    await created.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('heading', { name: 'from-ci', level: 1 }).waitFor();

    await page.getByLabel('Test payload').fill('{"event": "push", "ref": "refs/heads/main"}');
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    const log = page.getByRole('log', { name: 'Run log' });
    // The first lines arrive while the run is still going.
    await log.getByText('step 1 of 4').waitFor();
    const statusWhenFirstLine = await page.locator('.live-run .status').textContent();
    assert.notEqual(statusWhenFirstLine, 'succeeded', 'log lines arrive before the end');
    await page.locator('.live-run .status', { hasText: 'succeeded' }).waitFor({ timeout: 20000 });
    await log.getByText('step 4 of 4').waitFor();
    await accessible(page, 'trigger page');
    await screenshot(page, 'trigger-test-succeeded');

    // The invocation is listed without a reload.
    await page.getByRole('table', { name: 'Invocations' }).getByText('test', { exact: true }).waitFor();
  });
});

test('a run page\'s log resumes after its connection drops: every line once, in order', async () => {
  const agent = await agentVia(`${fakes.url}/agent/stream`, 'resumer');
  const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 'r' });
  await withPage({}, async (page) => {
    // The page's WebSocket goes through the test, which cuts the first
    // connection after the first log line.
    const sockets = [];
    await page.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
      const server = ws.connectToServer();
      sockets.push(ws);
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => ws.send(m));
    });
    await signIn(page, hookrun.base);
    const answer = await api('POST', `/api/v1/webhook-triggers/${trigger.id}/test`, {});
    await page.goto(`${hookrun.base}/#/runs/${answer.run_id}`);
    const log = page.getByRole('log', { name: 'Run log' });
    await log.getByText('step 1 of 4').waitFor();
    await sockets[0].close({ code: 1011, reason: 'cut by the test' });
    await page.locator('.facts .status', { hasText: 'succeeded' }).waitFor({ timeout: 20000 });
    await log.getByText('run succeeded').waitFor();
    assert.ok(sockets.length >= 2, 'the page reconnected');
    const lines = await log.getByRole('listitem').allTextContents();
    const steps = lines.filter((l) => l.includes('step '));
    assert.deepEqual(steps.map((l) => l.replace(/^info\s*/, '')), ['step 1 of 4', 'step 2 of 4', 'step 3 of 4', 'step 4 of 4']);
    assert.equal(new Set(lines).size, lines.length, 'no line twice');
    await screenshot(page, 'run-log-resumed');
  });
});

test('an edit changes what it shows and keeps the write-only values it does not', async () => {
  const agent = await api('POST', '/api/v1/agents', {
    name: 'keeper', runner: { type: 'http', url: `${fakes.url}/agent/stream`, headers: { Authorization: 'Bearer kept-secret-9876' } },
  });
  await withPage({ expect: [400] }, async (page) => {
    await signIn(page, hookrun.base);
    await page.goto(`${hookrun.base}/#/agents/${agent.id}`);
    await page.getByRole('link', { name: 'Edit agent' }).click();
    await page.getByLabel('Name').waitFor();
    assert.equal(await page.getByLabel('Agent URL').inputValue(), `${fakes.url}/agent/stream`);
    assert.equal(await page.getByLabel('Headers').inputValue(), '', 'a write-only value is never shown');
    await page.getByText('Limits and concurrency').click();
    await page.getByLabel('Timeout (seconds)').fill('0');
    await page.getByText('Limits and concurrency').click();
    await page.getByRole('button', { name: 'Save agent' }).click();
    // The refused field was in a collapsed section: it is opened and focused.
    const timeout = page.getByLabel('Timeout (seconds)');
    await page.locator('[aria-invalid="true"]').waitFor();
    assert.ok(await timeout.evaluate((el) => el === document.activeElement));
    await timeout.fill('60');
    await page.getByRole('button', { name: 'Save agent' }).click();
    await page.getByRole('heading', { name: 'keeper', level: 1 }).waitFor();
    await page.getByText('60 s').waitFor();
  });
  const saved = await api('GET', `/api/v1/agents/${agent.id}`);
  assert.equal(saved.timeout_seconds, 60);
  assert.deepEqual(saved.runner.headers.Authorization, { set: true, hint: '9876' });

  // A trigger's signature settings made through the API survive an edit
  // of something else in the console.
  const trigger = await api('POST', '/api/v1/webhook-triggers', {
    agent_id: agent.id, name: 'grafana', secret: 'grafana-secret-0123456789',
    signature: { scheme: 'hmac', header: 'X-Grafana-Alerting-Signature', encoding: 'base64' },
  });
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    await page.goto(`${hookrun.base}/#/triggers/${trigger.id}/edit`);
    await page.getByLabel('Name', { exact: true }).fill('grafana alerts');
    await page.getByText('Kept while the scheme stays hmac').waitFor();
    assert.equal(await page.getByRole('option', { name: /^none/ }).count(), 0, 'a signed trigger offers no "none"');
    await page.getByRole('button', { name: 'Save trigger' }).click();
    await page.getByRole('heading', { name: 'grafana alerts', level: 1 }).waitFor();
  });
  const edited = await api('GET', `/api/v1/webhook-triggers/${trigger.id}`);
  assert.equal(edited.signature.header, 'X-Grafana-Alerting-Signature');
  assert.equal(edited.signature.encoding, 'base64');
});

test('secrets are rotated and regenerated after a confirmation, a trigger disabled, a model agent and a schedule edited', async () => {
  const agent = await api('POST', '/api/v1/agents', { name: 'rotator', runner: { type: 'echo' } });
  const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 'rot', generate_secret: true });
  const sub = await api('POST', '/api/v1/subscriptions', { name: 'rot-sub', url: `${fakes.url}/receiver`, events: ['run.failed'] });
  const sched = await api('POST', '/api/v1/schedules', { name: 'nightly', agent_id: agent.id, cron: '0 2 * * *' });
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    // Agent: rotate the webhook secret (asked first, then shown once).
    await page.goto(`${hookrun.base}/#/agents/${agent.id}`);
    await page.getByRole('button', { name: 'Rotate webhook secret' }).click();
    const ask = page.getByRole('dialog', { name: 'Rotate webhook secret?' });
    await ask.getByRole('button', { name: 'Keep as it is' }).click();
    await ask.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Rotate webhook secret' }).click();
    await page.getByRole('dialog', { name: 'Rotate webhook secret?' }).getByRole('button', { name: 'Rotate webhook secret' }).click();
    const shown = page.getByRole('dialog', { name: 'New webhook secret' });
    assert.match(await shown.getByLabel('Webhook secret').inputValue(), /^whk_/);
    await shown.getByRole('button', { name: 'Done' }).click();

    // Trigger: regenerate the token after a confirmation; disable, enable.
    await page.goto(`${hookrun.base}/#/triggers/${trigger.id}`);
    await page.getByRole('button', { name: 'Regenerate token' }).click();
    await page.getByRole('dialog', { name: 'Regenerate token?' }).getByRole('button', { name: 'Regenerate token' }).click();
    const token = page.getByRole('dialog', { name: 'New token' });
    const newToken = await token.getByLabel('Token', { exact: true }).inputValue();
    assert.match(newToken, /^wht_/);
    assert.ok((await token.getByLabel('Token URL').inputValue()).endsWith(newToken));
    await token.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('button', { name: 'Disable trigger' }).click();
    await page.getByRole('button', { name: 'Enable trigger' }).waitFor();
    assert.equal((await api('GET', `/api/v1/webhook-triggers/${trigger.id}`)).is_active, false);
    await page.getByRole('button', { name: 'Enable trigger' }).click();
    await page.getByRole('button', { name: 'Disable trigger' }).waitFor();

    // Subscription: rotate its secret.
    await page.goto(`${hookrun.base}/#/subscriptions/${sub.id}`);
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('dialog', { name: 'Rotate secret?' }).getByRole('button', { name: 'Rotate secret' }).click();
    const subSecret = page.getByRole('dialog', { name: 'New signing secret' });
    assert.match(await subSecret.getByLabel('Signing secret').inputValue(), /^whsec_/);
    await subSecret.getByRole('button', { name: 'Done' }).click();
    await page.getByText('Previous secret signs until').waitFor();

    // A model runner's own fields; its key is write-only.
    await page.goto(`${hookrun.base}/#/agents/new`);
    await page.getByLabel('Name').fill('model');
    await page.getByLabel('Runner').selectOption('openai');
    await page.getByLabel('Model', { exact: true }).fill('gpt-4o-mini');
    await page.getByLabel('API key').fill('sk-test-abcd1234');
    await page.getByLabel('Prompt', { exact: true }).fill('Summarise {{ input }}');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('dialog', { name: 'Agent model created' }).getByRole('button', { name: 'Done' }).click();
    await page.getByText('openai · gpt-4o-mini · key …1234').waitFor();

    // Schedule: edit its cron and zone; the page shows the new times.
    await page.goto(`${hookrun.base}/#/schedules/${sched.id}/edit`);
    await page.getByLabel('Cron').fill('15 6 * * *');
    await page.getByLabel('Time zone').fill('America/New_York');
    await page.getByRole('region', { name: 'Next fire times' }).getByRole('listitem').first().waitFor();
    await page.getByRole('button', { name: 'Save schedule' }).click();
    await page.getByRole('heading', { name: 'nightly', level: 1 }).waitFor();
    assert.match(await page.locator('ol.fires li').first().textContent(), /06:15:00-0[45]:00/);
  });
  const agents = await api('GET', '/api/v1/agents?limit=100');
  const model = agents.data.find((a) => a.name === 'model');
  assert.equal(model.runner.has_api_key, true);
  assert.equal(model.runner.api_key_hint, '1234');
  assert.equal((await api('GET', `/api/v1/schedules/${sched.id}`)).timezone, 'America/New_York');
});

test('a slow run is cancelled from its page', async () => {
  const agent = await agentVia(`${fakes.url}/agent/slow`, 'slowpoke');
  const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 'slow' });
  const answer = await api('POST', `/api/v1/webhook-triggers/${trigger.id}/test`, {});
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    await page.goto(`${hookrun.base}/#/runs/${answer.run_id}`);
    await page.locator('.facts .status', { hasText: 'running' }).waitFor({ timeout: 15000 });
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('.facts .status', { hasText: 'cancelled' }).waitFor({ timeout: 15000 });
    await page.getByRole('button', { name: 'Retry run' }).waitFor();
    await accessible(page, 'run page');
    await screenshot(page, 'run-cancelled');
  });
  const run = await api('GET', `/api/v1/runs/${answer.run_id}`);
  assert.equal(run.status, 'cancelled');
  assert.equal(run.cancel_reason, 'requested');
});

test('the runs list follows new runs live, filters by status, and Retry makes a new run', async () => {
  const agent = await api('POST', '/api/v1/agents', { name: 'echoer', runner: { type: 'echo' } });
  const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 'echo-t' });
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    await page.goto(`${hookrun.base}/#/runs?agent_id=${agent.id}`);
    await page.getByText('No runs match these filters.').waitFor();
    await page.locator('.link-live').waitFor();
    const answer = await api('POST', `/api/v1/webhook-triggers/${trigger.id}/test`, { hello: 'live' });
    const row = page.getByRole('row').filter({ hasText: answer.run_id });
    await row.waitFor();
    await row.getByText('succeeded').waitFor({ timeout: 15000 });
    await screenshot(page, 'runs-live');
    await page.getByLabel('Status').selectOption('failed');
    await page.getByText('No runs match these filters.').waitFor();
    assert.match(page.url(), /status=failed/);
    await page.goBack();
    await row.waitFor();
    await row.getByRole('link').click();
    await page.getByRole('button', { name: 'Retry run' }).click();
    await page.getByText('Retry of', { exact: true }).waitFor();
    assert.ok(!page.url().includes(answer.run_id), 'the retry is a new run');
    await page.locator('.facts .status', { hasText: 'succeeded' }).waitFor({ timeout: 15000 });
  });
});

test('a failed delivery is redelivered', async () => {
  fakes.state.receiverStatus = 500;
  const agent = await api('POST', '/api/v1/agents', { name: 'notifier', runner: { type: 'echo' } });
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    await page.getByRole('link', { name: 'Subscriptions' }).click();
    await page.getByRole('link', { name: 'New subscription' }).click();
    await page.getByLabel('Name').fill('ops hook');
    await page.getByLabel('URL').fill(`${fakes.url}/receiver`);
    await page.getByLabel('Agent').selectOption(agent.id);
    await page.getByRole('button', { name: 'Create subscription' }).click();
    const dialog = page.getByRole('dialog', { name: 'Subscription ops hook created' });
    assert.match(await dialog.getByLabel('Signing secret').inputValue(), /^whsec_/);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('heading', { name: 'ops hook', level: 1 }).waitFor();

    const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 't' });
    await api('POST', `/api/v1/webhook-triggers/${trigger.id}/test`, {});
    const deadline = Date.now() + 20000;
    while (fakes.state.received.length === 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 200));
    assert.ok(fakes.state.received.length > 0, 'the receiver was called');
    await page.getByRole('button', { name: 'Refresh deliveries' }).click();
    await page.getByRole('table', { name: 'Deliveries' }).getByRole('link').first().click();
    await page.getByRole('table', { name: 'Attempts' }).getByText('500').first().waitFor();
    await accessible(page, 'delivery page');

    fakes.state.receiverStatus = 200;
    await page.getByRole('button', { name: 'Redeliver' }).click();
    const manual = page.getByRole('row').filter({ hasText: 'manual' });
    await manual.waitFor({ timeout: 20000 });
    await manual.getByRole('cell', { name: '200', exact: true }).waitFor();
    await screenshot(page, 'delivery-redelivered');
  });
});

test('a schedule is made with a preview of its next fire times, paused and resumed', async () => {
  await api('POST', '/api/v1/agents', { name: 'morning', runner: { type: 'echo' } });
  await withPage({ expect: [400] }, async (page) => {
    await signIn(page, hookrun.base);
    await page.getByRole('link', { name: 'Schedules' }).click();
    await page.getByRole('link', { name: 'New schedule' }).click();
    await page.getByLabel('Name').fill('weekday digest');
    await page.getByLabel('Agent').selectOption({ label: 'morning' });
    await page.getByLabel('Cron').fill('61 9 * * *');
    const preview = page.getByRole('region', { name: 'Next fire times' });
    await preview.getByRole('alert').waitFor();
    await page.getByLabel('Cron').fill('30 8 * * 1-5');
    await page.getByLabel('Time zone').fill('Europe/Berlin');
    await preview.getByRole('listitem').nth(4).waitFor();
    const first = await preview.getByRole('listitem').first().textContent();
    assert.match(first, /08:30:00\+0[12]:00/, 'local times in the chosen zone');
    await accessible(page, 'schedule form');
    await screenshot(page, 'schedule-preview');
    await page.getByRole('button', { name: 'Create schedule' }).click();
    await page.getByRole('heading', { name: 'weekday digest', level: 1 }).waitFor();
    assert.equal(await page.locator('ol.fires li').count(), 5);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByText('None while paused').waitFor();
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    assert.equal(await page.locator('ol.fires li').count(), 5);
    await screenshot(page, 'schedule-page');
  });
});

test('replay counts the failed runs first, then retries them', async () => {
  const agent = await agentVia(`${fakes.url}/agent/fail`, 'flaky');
  const trigger = await api('POST', '/api/v1/webhook-triggers', { agent_id: agent.id, name: 'f' });
  const ids = [];
  for (let i = 0; i < 3; i += 1) ids.push((await api('POST', `/api/v1/webhook-triggers/${trigger.id}/test`, {})).run_id);
  for (const id of ids) {
    const deadline = Date.now() + 20000;
    while ((await api('GET', `/api/v1/runs/${id}`)).status !== 'failed' && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 200));
  }
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    await page.goto(`${hookrun.base}/#/runs/replay?agent_id=${agent.id}`);
    await page.getByRole('button', { name: 'Count runs' }).click();
    await page.getByText('3 runs match').waitFor();
    await page.getByRole('button', { name: 'Replay 3 runs' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Replay 3 runs' }).click();
    await page.getByText('3 retries made.').waitFor();
    await screenshot(page, 'replay-done');
  });
});

test('every page works at a phone\'s width without sideways scrolling', async () => {
  const agents = await api('GET', '/api/v1/agents');
  const agent = agents.data[0];
  const runs = await api('GET', '/api/v1/runs');
  await withPage({ width: 390, height: 844 }, async (page) => {
    await signIn(page, hookrun.base);
    const pages = ['/agents', `/agents/${agent.id}`, '/runs', `/runs/${runs.data[0].id}`, '/subscriptions', '/schedules', '/schedules/new', '/agents/new'];
    for (const p of pages) {
      await page.goto(`${hookrun.base}/#${p}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      assert.equal(await overflowsSideways(page), false, `${p} fits 390 px`);
      await accessible(page, `${p} at 390 px`);
    }
    await page.goto(`${hookrun.base}/#/runs`);
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    await screenshot(page, 'phone-runs');
  });
});

test('keyboard navigation reaches every action', async () => {
  const { data: [schedule] } = await api('GET', '/api/v1/schedules');
  const { data: triggers } = await api('GET', '/api/v1/webhook-triggers');
  const { data: subs } = await api('GET', '/api/v1/subscriptions');
  const { data: [delivery] } = await api('GET', `/api/v1/subscriptions/${subs[0].id}/deliveries`);
  const { data: [run] } = await api('GET', '/api/v1/runs');
  await withPage({}, async (page) => {
    await signIn(page, hookrun.base);
    const pages = [`/agents/${triggers[0].agent_id}`, `/triggers/${triggers[0].id}`, `/runs/${run.id}`, '/runs',
      `/subscriptions/${subs[0].id}`, `/deliveries/${delivery.id}`, `/schedules/${schedule.id}`, '/schedules/new'];
    for (const p of pages) {
      await page.goto(`${hookrun.base}/#${p}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      const wanted = await page.evaluate(() => [...document.querySelectorAll('a[href], button, input, select, textarea')]
        .filter((el) => !el.disabled && el.offsetParent !== null)
        .map((el) => `${el.tagName} ${el.id || el.getAttribute('href') || el.textContent.trim()}`));
      const reached = new Set();
      await page.locator('body').focus();
      // Round the page until every control was reached (focus may start
      // anywhere; a date field has several stops of its own).
      for (let i = 0; i < 400 && wanted.some((w) => !reached.has(w)); i += 1) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => {
          const el = document.activeElement;
          return el && `${el.tagName} ${el.id || el.getAttribute('href') || el.textContent.trim()}`;
        }));
      }
      const missed = wanted.filter((w) => !reached.has(w));
      assert.deepEqual(missed, [], `${p}: every control is reached with Tab`);
      if (p.startsWith('/triggers/')) await screenshot(page, 'keyboard-focus');
    }
    // An action by keyboard alone: Enter on the focused Pause button.
    await page.goto(`${hookrun.base}/#/schedules/${schedule.id}`);
    await page.getByRole('button', { name: 'Pause' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Resume' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Pause' }).waitFor();
  });
});
