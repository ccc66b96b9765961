// Run events over the WebSocket channel (README, "Real-time events"): the
// admin key goes in the handshake's subprotocol list (a browser cannot set
// headers, and a URL would be logged). A dropped connection is reopened
// with backoff and resumes after the last event given (`last_event_id`),
// so each event reaches the page once and in order.
import { config } from './config.js';
import { adminKey, signOut } from './session.js';
import { api } from './api.js';

/**
 * Follows `scope`: `{}` (the workspace), `{agent_id}` or `{run_id}` (a run
 * from its first event). `onEvent(event)` gets each event; `onState(state,
 * detail)` hears `connecting`, `live`, `reconnecting` and `error`.
 * Returns the function that stops following.
 */
export function follow(scope, onEvent, onState = () => {}) {
  let socket = null;
  let stopped = false;
  let lastId = null;
  let failures = 0;
  let timer = null;

  const open = () => {
    const key = adminKey();
    if (stopped || !key) return;
    onState(failures ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(config.wsUrl, ['hookrun.v1', `hookrun.bearer.${key}`]);
    socket = ws;
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.type === 'ready') {
        ws.send(JSON.stringify({
          type: 'subscribe',
          channel: msg.channel,
          agent_id: scope.agent_id || undefined,
          run_id: scope.run_id || undefined,
          last_event_id: lastId || undefined,
        }));
      } else if (msg.type === 'subscribed') {
        failures = 0;
        onState('live');
      } else if (msg.type === 'error') {
        onState('error', msg.message);
      } else if (msg.id && msg.run_id) {
        lastId = msg.id;
        onEvent(msg);
      }
    };
    ws.onclose = (e) => {
      if (socket === ws) socket = null;
      if (stopped) return;
      if (e.code === 4001) {
        if (key === adminKey()) signOut('Your key was not accepted: sign in again.');
        return;
      }
      if (e.code === 4003) {
        onState('error', e.reason || 'this key may not follow that channel');
        return;
      }
      failures += 1;
      onState('reconnecting');
      // A refused handshake does not say why: a plain call does, and a
      // 401 there signs out (a revoked key stops retrying).
      if (!opened) api('GET', '/api/v1/agents?limit=1').catch(() => {});
      timer = setTimeout(open, Math.min(15000, 250 * 2 ** Math.min(failures, 6)));
    };
  };

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    const ws = socket;
    socket = null;
    if (!ws) return;
    ws.onmessage = null;
    // Closing a socket still connecting makes the browser log an error:
    // let it open, then close it.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
  };
}
