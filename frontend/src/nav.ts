import { csrfToken } from './api';
import { h } from './dom';
import type { RouteName } from './router';
import type { Me, Role } from './types';

interface NavLink {
  label: string;
  href: string;
  route: RouteName | null;
}

const UPLOAD: NavLink = { label: 'Upload', href: '/upload', route: 'upload' };
const STUDIES: NavLink = { label: 'Studies', href: '/studies', route: 'studies' };
const QUEUE: NavLink = { label: 'Queue', href: '/queue', route: 'queue' };
const MODELS: NavLink = { label: 'Models', href: '/models', route: 'models' };
// Claims pages are rendered by Django, so this is a plain full-page link.
const CLAIMS: NavLink = { label: 'Claims', href: '/claims', route: null };
const SHARES: NavLink = { label: 'Shares', href: '/shares', route: 'shares' };
const OPEN_SHARE: NavLink = { label: 'Open share', href: '/shares/open', route: 'shareOpen' };
// Django's admin: people and their roles (groups), the audit log.
const ADMIN: NavLink = { label: 'Admin', href: '/admin/', route: null };

const NAV_BY_ROLE: Record<Role, NavLink[]> = {
  clinician: [UPLOAD, STUDIES, SHARES],
  admin: [UPLOAD, STUDIES, QUEUE, MODELS, SHARES, CLAIMS, ADMIN],
  annotator: [STUDIES, QUEUE],
  expert: [STUDIES, QUEUE, MODELS],
  insurer: [CLAIMS, OPEN_SHARE],
};

export function navLinksFor(role: Role): NavLink[] {
  return NAV_BY_ROLE[role] ?? [];
}

export function canOpen(role: Role, route: RouteName): boolean {
  // Anyone handed a share's id and key may open it.
  if (route === 'home' || route === 'notFound' || route === 'shareOpen') return true;
  // The viewer is reachable from Studies and Queue.
  if (route === 'viewer') return navLinksFor(role).some((link) => link.route === 'studies' || link.route === 'queue');
  if (route === 'study') return navLinksFor(role).some((link) => link.route === 'studies');
  return navLinksFor(role).some((link) => link.route === route);
}

export function homeRouteFor(role: Role): string {
  const first = navLinksFor(role)[0];
  return first ? first.href : '/';
}

export function renderHeader(me: Me, current: RouteName): HTMLElement {
  // A study's page belongs to Studies.
  const section: RouteName = current === 'study' ? 'studies' : current;
  const links = navLinksFor(me.role).map((link) =>
    h(
      'a',
      {
        href: link.href,
        className: link.route === section ? 'nav-link active' : 'nav-link',
        'aria-current': link.route === section ? 'page' : null,
        'data-testid': `nav-${link.label.toLowerCase().replace(/\s+/g, '-')}`,
      },
      link.label,
    ),
  );
  const logout = h(
    'form',
    { method: 'post', action: '/accounts/logout/', className: 'logout-form' },
    h('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: csrfToken() }),
    h('button', { type: 'submit', className: 'btn btn-ghost', 'data-testid': 'logout' }, 'Log out'),
  );
  return h(
    'header',
    { className: 'app-header' },
    h('a', { href: '/', className: 'brand' }, 'Tamper Detection Portal'),
    h('nav', { 'aria-label': 'Main', className: 'main-nav' }, links),
    h('span', { className: 'whoami', 'data-testid': 'whoami' }, `${me.username} · ${me.role}`),
    // Rendered by Django, like the claims pages: a full-page link.
    h('a', { href: '/accounts/password/', className: 'nav-link', 'data-testid': 'account-password' }, 'Password'),
    logout,
  );
}
