// What the user can do: the topics table's buttons (details, publish, peek, empty, remove, per-group actions),
// the toolbar (search, filter, pager, declare), sorting by a column header, `/` to search, and the URL fragment.
import { confirmThen, declareDialog, peekDialog, publishDialog } from './dialogs.js';
import { $ } from './dom.js';
import { type Monitor, readFragment } from './state.js';
import { isSortKey, type TopicsTable } from './topics.js';

export function bindControls(app: Monitor, table: TopicsTable): void {
  const view = app.state.view;
  const client = app.client;
  $('#topics tbody').addEventListener('click', (ev) => {
    const target = (ev.target as Element).closest<HTMLElement>('[data-act]');
    if (target === null) return;
    const tr = target.closest<HTMLElement>('tr[data-topic], tr[data-detail]');
    const topic = tr?.dataset.topic ?? tr?.dataset.detail;
    if (!topic) return;
    const group = target.closest<HTMLElement>('tr[data-group]')?.dataset.group;
    switch (target.dataset.act) {
      case 'toggle':
        if (view.expanded.has(topic)) view.expanded.delete(topic);
        else view.expanded.add(topic);
        app.schedule();
        break;
      case 'publish':
        publishDialog(app, topic);
        break;
      case 'peek':
        void peekDialog(app, topic);
        break;
      case 'empty':
        void confirmThen(
          app,
          `Empty ${topic}?`,
          `Every stored message of ${topic} is removed, for every group. This cannot be undone.`,
          'Empty topic',
          () => client.empty(topic),
        );
        break;
      case 'remove':
        void confirmThen(
          app,
          `Remove ${topic}?`,
          `The topic ${topic}, its groups and its messages are deleted. This cannot be undone.`,
          'Remove topic',
          () => client.remove(topic),
        );
        break;
      case 'skip-group':
        if (group)
          void confirmThen(
            app,
            `Skip ${group} to the end?`,
            `Group ${group} of ${topic} moves past every stored message; they stay for other groups.`,
            'Skip to end',
            () => client.empty(topic, group),
          );
        break;
      case 'remove-group':
        if (group)
          void confirmThen(
            app,
            `Remove group ${group}?`,
            `The consume group ${group} of ${topic} is deleted; its consumers get errors.`,
            'Remove group',
            () => client.remove(topic, group),
          );
        break;
      case 'show-dlq':
        view.search = `${topic}.dlq`;
        view.kind = '';
        view.page = 0;
        app.showFilter();
        app.schedule();
        break;
    }
  });

  $('#search').addEventListener('input', (ev) => {
    view.search = (ev.target as HTMLInputElement).value;
    view.page = 0;
    app.schedule();
  });
  $('#kind').addEventListener('change', (ev) => {
    view.kind = (ev.target as HTMLSelectElement).value;
    view.page = 0;
    app.schedule();
  });
  $('#prev').addEventListener('click', () => {
    view.page = Math.max(0, table.page - 1);
    app.schedule();
  });
  $('#next').addEventListener('click', () => {
    view.page = Math.min(table.pages - 1, table.page + 1);
    app.schedule();
  });
  $('#declare').addEventListener('click', () => declareDialog(app));
  for (const th of document.querySelectorAll<HTMLElement>('#topics th[data-sort]')) {
    th.tabIndex = 0;
    const sort = () => {
      const key = th.dataset.sort ?? '';
      if (!isSortKey(key)) return;
      if (view.sort === key) view.desc = !view.desc;
      else {
        view.sort = key;
        view.desc = key !== 'name'; // numbers: biggest first
      }
      app.schedule();
    };
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        sort();
      }
    });
  }
  document.addEventListener('keydown', (ev) => {
    if (
      ev.key === '/' &&
      document.activeElement?.tagName !== 'INPUT' &&
      document.activeElement?.tagName !== 'TEXTAREA'
    ) {
      ev.preventDefault();
      $('#search').focus();
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) app.refresh();
  });

  const showFragment = () => {
    readFragment(view, location.hash.slice(1));
    app.showFilter();
  };
  showFragment();
  addEventListener('hashchange', () => {
    showFragment();
    app.schedule();
  });
}
