import './styles.css';
import { api, ApiError } from './api';
import { h, replaceChildren } from './dom';
import { startIdleLogoff } from './idleLogoff';
import { canOpen, homeRouteFor, renderHeader } from './nav';
import { navigate, startRouter, type Page, type RouteMatch } from './router';
import type { Me } from './types';

const root = document.getElementById('app') as HTMLElement;
let currentPage: Page | null = null;

function renderMessage(title: string, text: string, testId: string): HTMLElement {
  return h('section', { className: 'page state-message', 'data-testid': testId }, h('h1', {}, title), h('p', {}, text));
}

async function mountPage(me: Me, match: RouteMatch, container: HTMLElement): Promise<Page> {
  if (!canOpen(me.role, match.name)) {
    container.append(renderMessage('Not available', `This page is not available for the ${me.role} role.`, 'forbidden'));
    return {};
  }
  switch (match.name) {
    case 'home': {
      const home = homeRouteFor(me.role);
      if (home.startsWith('/claims')) {
        container.append(
          h('section', { className: 'page state-message', 'data-testid': 'home' },
            h('h1', {}, `Welcome, ${me.username}`),
            h('p', {}, h('a', { href: '/claims', className: 'btn btn-primary' }, 'Open claims'), ' ',
              h('a', { href: '/shares/open', className: 'btn' }, 'Open an encrypted share'))),
        );
        return {};
      }
      navigate(home, { replace: true });
      return {};
    }
    case 'upload':
      return (await import('./pages/uploadPage')).mountUploadPage(container, me);
    case 'studies':
      return (await import('./pages/studiesPage')).mountStudiesPage(container, me, match.query);
    case 'study':
      return (await import('./pages/studyPage')).mountStudyPage(container, me, match.params.studyUid ?? '');
    case 'queue':
      return (await import('./pages/queuePage')).mountQueuePage(container, me, match.query);
    case 'models':
      return (await import('./pages/modelsPage')).mountModelsPage(container, me);
    case 'shares':
      return (await import('./pages/sharesPage')).mountSharesPage(container);
    case 'shareOpen':
      return (await import('./pages/shareOpenPage')).mountShareOpenPage(container, match.params.shareId ?? '');
    case 'viewer':
      return (await import('./viewer/viewerPage')).mountViewerPage(container, {
        me,
        studyUid: match.params.studyUid ?? '',
        seriesUid: match.params.seriesUid ?? '',
        query: match.query,
      });
    default:
      container.append(renderMessage('Page not found', 'There is nothing at this address.', 'not-found'));
      return {};
  }
}

async function boot(): Promise<void> {
  let me: Me;
  try {
    me = await api.me();
  } catch (error) {
    if (error instanceof ApiError) {
      replaceChildren(root, renderMessage('Portal unavailable', error.message, 'boot-error'));
    }
    return;
  }
  startIdleLogoff(me.idle_logoff_s ?? 0);
  let generation = 0;
  startRouter(async (match) => {
    const mine = ++generation;
    currentPage?.destroy?.();
    currentPage = null;
    const main = h('main', { id: 'main', className: `main main-${match.name}`, tabindex: '-1' });
    replaceChildren(root, renderHeader(me, match.name), main);
    try {
      const page = await mountPage(me, match, main);
      if (mine !== generation) page.destroy?.();
      else currentPage = page;
    } catch (error) {
      console.error(error);
      replaceChildren(main, renderMessage('Something went wrong', String((error as Error).message ?? error), 'page-error'));
    }
  });
}

// A tab opened before a deploy asks for page chunks the deploy replaced (their names carry a content hash):
// load the new version once instead of showing an error. At most once a minute, so a file that is really
// missing shows the error rather than reloading for ever.
const RELOADED_KEY = 'portal.reloadedForNewVersion';
window.addEventListener('vite:preloadError', () => {
  const last = Number(sessionStorage.getItem(RELOADED_KEY) ?? 0);
  if (Date.now() - last < 60_000) return;
  sessionStorage.setItem(RELOADED_KEY, String(Date.now()));
  location.reload();
});

void boot();
