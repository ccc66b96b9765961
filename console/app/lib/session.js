// The admin key of this tab: in sessionStorage only (gone when the tab
// closes; never in a URL or localStorage), sent as a bearer token.
const KEY = 'hookrun.admin-key';

export function adminKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

/** Forgets the key; the app shows the sign-in page with `reason`. */
export function signOut(reason) {
  sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent('hookrun:signed-out', { detail: { reason } }));
}
