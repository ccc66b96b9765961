// Where the API and the WebSocket channel are: same origin under
// `hookrun serve`; on a static host, from the config.json written at
// deploy time (`hookrun console export --api-url … --ws-url …`).
export const config = { apiUrl: '', wsUrl: '' };

export async function loadConfig() {
  let conf = {};
  try {
    const resp = await fetch('/config.json', { cache: 'no-cache' });
    if (resp.ok) conf = await resp.json();
  } catch {
    // No config: the page's own origin.
  }
  config.apiUrl = (conf.api_url || '').replace(/\/+$/, '');
  // Without a ws_url: the channel of the API's host (hookrun serve's).
  const base = new URL(config.apiUrl || location.origin);
  const wsScheme = base.protocol === 'https:' ? 'wss:' : 'ws:';
  config.wsUrl = conf.ws_url || `${wsScheme}//${base.host}/api/v1/ws`;
}
