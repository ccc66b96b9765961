import { html, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { signIn } from '../lib/session.js';
import { Alert, Input } from '../ui.js';

export function SignIn({ notice, next, onSignedIn }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) {
      setError('Enter an admin key: hookrun serve prints one on its first start (hka_…).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api('GET', '/api/v1/agents?limit=1', undefined, { key: k, quiet401: true });
      signIn(k);
      setKey('');
      onSignedIn();
    } catch (err) {
      setError(err.status === 401 ? 'That key was not accepted: check it and try again.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  document.title = 'Sign in · hookrun';
  return html`<main class="signin" id="main">
    <form onSubmit=${submit} aria-labelledby="signin-title" novalidate>
      <h1 id="signin-title">hookrun console</h1>
      <p class="muted">Sign in with an admin key of your workspace. It stays in this tab only and is forgotten when the tab closes.</p>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <${Input} label="Admin key" type="password" autocomplete="off" spellcheck="false"
        value=${key} onInput=${(e) => setKey(e.target.value)}
        hint="Lost it? hookrun workspace add-key prints a new one." />
      <${Alert} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
      ${next && html`<p class="muted small">You will go on to <code>${next}</code>.</p>`}
    </form>
  </main>`;
}
