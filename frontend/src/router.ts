// History-API routing: Django returns the SPA shell for every page route.
export interface Page {
  /** Called when the route is left; release listeners, workers, GPU resources. */
  destroy?: () => void;
}

export interface RouteMatch {
  name: RouteName;
  params: Record<string, string>;
  query: URLSearchParams;
}

export type RouteName = 'home' | 'upload' | 'studies' | 'study' | 'viewer' | 'queue' | 'models' | 'shares' | 'shareOpen' | 'notFound';

const ROUTES: { name: RouteName; pattern: RegExp; keys: string[] }[] = [
  { name: 'home', pattern: /^\/$/, keys: [] },
  { name: 'upload', pattern: /^\/upload\/?$/, keys: [] },
  { name: 'studies', pattern: /^\/studies\/?$/, keys: [] },
  { name: 'study', pattern: /^\/studies\/([^/]+)\/?$/, keys: ['studyUid'] },
  { name: 'viewer', pattern: /^\/viewer\/([^/]+)\/([^/]+)\/?$/, keys: ['studyUid', 'seriesUid'] },
  { name: 'queue', pattern: /^\/queue\/?$/, keys: [] },
  { name: 'models', pattern: /^\/models\/?$/, keys: [] },
  { name: 'shares', pattern: /^\/shares\/?$/, keys: [] },
  { name: 'shareOpen', pattern: /^\/shares\/open(?:\/([^/]+))?\/?$/, keys: ['shareId'] },
];

/** Paths rendered by Django itself (not the SPA): always full page loads. */
export function isServerPage(path: string): boolean {
  return /^\/(claims|accounts|admin|api|dicomweb|static)(\/|$)/.test(path);
}

export function matchRoute(url: URL): RouteMatch {
  for (const route of ROUTES) {
    const found = route.pattern.exec(url.pathname);
    if (!found) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((key, i) => (params[key] = decodeURIComponent(found[i + 1] ?? '')));
    return { name: route.name, params, query: url.searchParams };
  }
  return { name: 'notFound', params: {}, query: url.searchParams };
}

type Listener = (match: RouteMatch) => void;
let onChange: Listener = () => undefined;

export function startRouter(listener: Listener): void {
  onChange = listener;
  window.addEventListener('popstate', () => onChange(matchRoute(new URL(location.href))));
  // Same-origin links to SPA routes navigate without a reload.
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest?.('a');
    if (!anchor || anchor.target || anchor.hasAttribute('download')) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || isServerPage(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  onChange(matchRoute(new URL(location.href)));
}

export function navigate(path: string, { replace = false } = {}): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  onChange(matchRoute(new URL(location.href)));
}

/** Update the query string without re-rendering the page (e.g. current slice). */
export function updateQuery(params: Record<string, string | number | null>): void {
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(params)) {
    if (value === null) url.searchParams.delete(key);
    else url.searchParams.set(key, String(value));
  }
  history.replaceState(null, '', url.pathname + url.search);
}
