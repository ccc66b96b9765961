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
  const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  config.wsUrl = conf.ws_url || `${wsScheme}//${location.host}/api/v1/ws`;
}
