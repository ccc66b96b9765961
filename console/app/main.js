// The hookrun console: sign in with an admin key, then every page of the
// management API and the live channel. Plain ES modules, no build step.
import { html, render, useEffect, useRef, useState } from './lib/html.js';
import { loadConfig } from './lib/config.js';
import { adminKey, signOut } from './lib/session.js';
import { current, navigate, useRoute } from './lib/route.js';
import { SignIn } from './pages/signin.js';
import { Agents, AgentForm, AgentPage } from './pages/agents.js';
import { TriggerForm, TriggerPage } from './pages/triggers.js';
import { Runs, RunPage, Replay } from './pages/runs.js';
import { Subscriptions, SubscriptionForm, SubscriptionPage, DeliveryPage } from './pages/subscriptions.js';
import { Schedules, ScheduleForm, SchedulePage } from './pages/schedules.js';

/** [pattern, page]: the first whose pattern matches the path is shown. */
const ROUTES = [
  [/^\/agents$/, () => html`<${Agents} />`],
  [/^\/agents\/new$/, () => html`<${AgentForm} />`],
  [/^\/agents\/([^/]+)\/edit$/, (id) => html`<${AgentForm} id=${id} />`],
  [/^\/agents\/([^/]+)\/triggers\/new$/, (id) => html`<${TriggerForm} agentId=${id} />`],
  [/^\/agents\/([^/]+)$/, (id) => html`<${AgentPage} id=${id} />`],
  [/^\/triggers\/([^/]+)\/edit$/, (id) => html`<${TriggerForm} id=${id} />`],
  [/^\/triggers\/([^/]+)$/, (id) => html`<${TriggerPage} id=${id} />`],
  [/^\/runs$/, () => html`<${Runs} />`],
  [/^\/runs\/replay$/, () => html`<${Replay} />`],
  [/^\/runs\/([^/]+)$/, (id) => html`<${RunPage} id=${id} />`],
  [/^\/subscriptions$/, () => html`<${Subscriptions} />`],
  [/^\/subscriptions\/new$/, () => html`<${SubscriptionForm} />`],
  [/^\/subscriptions\/([^/]+)\/edit$/, (id) => html`<${SubscriptionForm} id=${id} />`],
  [/^\/subscriptions\/([^/]+)$/, (id) => html`<${SubscriptionPage} id=${id} />`],
  [/^\/deliveries\/([^/]+)$/, (id) => html`<${DeliveryPage} id=${id} />`],
  [/^\/schedules$/, () => html`<${Schedules} />`],
  [/^\/schedules\/new$/, () => html`<${ScheduleForm} />`],
  [/^\/schedules\/([^/]+)\/edit$/, (id) => html`<${ScheduleForm} id=${id} />`],
  [/^\/schedules\/([^/]+)$/, (id) => html`<${SchedulePage} id=${id} />`],
];

const SECTIONS = [
  ['/agents', 'Agents'],
  ['/runs', 'Runs'],
  ['/subscriptions', 'Subscriptions'],
  ['/schedules', 'Schedules'],
];

function NotFound({ path }) {
  return html`<section class="page"><h1>Not found</h1>
    <p>No console page is at <code>${path}</code>. <a href="#/agents">Go to the agents</a>.</p></section>`;
}

function Shell({ route, children }) {
  const section = SECTIONS.find(([p]) => route.path === p || route.path.startsWith(`${p}/`))?.[0];
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/agents">hookrun</a>
      <nav aria-label="Sections">
        ${SECTIONS.map(([p, name]) => html`<a href=${`#${p}`} aria-current=${section === p ? 'page' : undefined}>${name}</a>`)}
      </nav>
      <button type="button" class="signout" onClick=${() => signOut(null)}>Sign out</button>
    </header>
    <main id="main" tabindex="-1">${children}</main>
  </div>`;
}

function App() {
  const route = useRoute();
  const [signedIn, setSignedIn] = useState(Boolean(adminKey()));
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    const out = (e) => {
      const reason = e.detail?.reason || null;
      setSignedIn(false);
      setNotice(reason);
      // After a refused key, come back to the same page; after a sign-out, start over.
      const here = current();
      if (here.path === '/sign-in') return;
      const next = location.hash.replace(/^#/, '') || '/';
      navigate('/sign-in', reason ? { next } : {}, { replace: true });
    };
    window.addEventListener('hookrun:signed-out', out);
    return () => window.removeEventListener('hookrun:signed-out', out);
  }, []);
  // A new page starts at the top with focus on its heading, so a screen
  // reader announces it (not on the first load).
  const first = useRef(true);
  useEffect(() => {
    window.scrollTo(0, 0);
    if (first.current) {
      first.current = false;
      return undefined;
    }
    const t = setTimeout(() => document.querySelector('main h1')?.focus(), 0);
    return () => clearTimeout(t);
  }, [route.path]);

  let redirect = null;
  if (signedIn && route.path === '/sign-in') redirect = route.query.next || '/agents';
  else if (signedIn && route.path === '/') redirect = '/agents';
  useEffect(() => {
    if (redirect) {
      const [path, q = ''] = redirect.split('?');
      navigate(path, Object.fromEntries(new URLSearchParams(q)), { replace: true });
    }
  }, [redirect]);
  if (redirect) return null;

  if (!signedIn) {
    const here = location.hash.replace(/^#/, '');
    const next = route.path === '/sign-in' ? route.query.next : here || undefined;
    return html`<${SignIn} notice=${notice} next=${next} onSignedIn=${() => { setNotice(null); setSignedIn(true); }} />`;
  }
  for (const [pattern, page] of ROUTES) {
    const m = route.path.match(pattern);
    if (m) {
      const args = m.slice(1).map(decodeURIComponent);
      return html`<${Shell} route=${route}>${page(...args)}<//>`;
    }
  }
  return html`<${Shell} route=${route}><${NotFound} path=${route.path} /><//>`;
}

await loadConfig();
const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
