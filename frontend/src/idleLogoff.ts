import { csrfToken, loginUrl } from './api';

const ACTIVITY = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart'] as const;
let holds = 0;

/** Work the person started and waits for (an upload) counts as use until the returned function is called. */
export function holdIdleLogoff(): () => void {
  holds += 1;
  let released = false;
  return () => {
    if (!released) holds -= 1;
    released = true;
  };
}

/**
 * Automatic logoff on the screen too: after `seconds` without mouse, keyboard or touch the browser signs out
 * and shows the sign-in form, so a study left open does not stay on display. (The server ends the session
 * after the same idle time, but a page that polls would keep it alive and would not clear the screen.)
 * While the person is active the server is told now and then, so reading a page without clicking keeps the
 * session too.
 */
export function startIdleLogoff(seconds: number): void {
  if (!(seconds > 0)) return;
  const keepAliveMs = Math.min(60, seconds / 4) * 1000;
  let timer = 0;
  let lastKeepAlive = Date.now();
  const signOut = async (): Promise<void> => {
    if (holds > 0) {
      restart();
      return;
    }
    const next = location.pathname + location.search;
    try {
      await fetch('/accounts/logout/', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRFToken': csrfToken() } });
    } finally {
      location.assign(loginUrl(next));
    }
  };
  const restart = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void signOut(), seconds * 1000);
    if (Date.now() - lastKeepAlive >= keepAliveMs) {
      lastKeepAlive = Date.now();
      void fetch('/api/me', { credentials: 'same-origin' }).catch(() => undefined);
    }
  };
  for (const event of ACTIVITY) window.addEventListener(event, restart, { passive: true, capture: true });
  restart();
}
