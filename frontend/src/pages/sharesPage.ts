import { h } from '../dom';
import type { Page } from '../router';
import { createShareList } from '../shares/shareList';

/** Every encrypted share this user created (admins: all), with revoke. New shares start on a study's page. */
export function mountSharesPage(container: HTMLElement): Page {
  const list = createShareList({ showStudy: true });
  container.append(
    h('section', { className: 'page shares-page', 'data-testid': 'shares-page' },
      h('h1', {}, 'Encrypted shares'),
      h('p', { className: 'muted' },
        'Studies you sealed for insurers. Revoking a share deletes the portal\'s copy of the archive and stops the key ',
        'from opening it here; a copy already downloaded stays readable to whoever holds the key. ',
        'To share a study, open it from ', h('a', { href: '/studies' }, 'Studies'), '.'),
      list.element),
  );
  void list.reload();
  return {};
}
