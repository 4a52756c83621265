// The view kept in the URL fragment (no browser).
import { describe, expect, it } from 'vitest';
import { createState, fragmentOf, readFragment } from '../src/state.js';

describe('the URL fragment', () => {
  it('is empty for the default view', () => {
    expect(fragmentOf(createState().view)).toBe('');
  });

  it('round-trips search, filter, sort, order and page', () => {
    const { view } = createState();
    readFragment(view, 'q=orders&show=backlog&sort=dlq&desc=1&page=3');
    expect(view).toMatchObject({ search: 'orders', kind: 'backlog', sort: 'dlq', desc: true, page: 2 });
    expect(fragmentOf(view)).toBe('q=orders&show=backlog&sort=dlq&desc=1&page=3');
  });

  it('falls back to the defaults for an unknown sort or a bad page, and keeps open details', () => {
    const { view } = createState();
    view.expanded.add('orders');
    readFragment(view, 'sort=constructor&page=-4');
    expect(view).toMatchObject({ sort: 'name', page: 0 });
    readFragment(view, 'page=x');
    expect(view.page).toBe(0);
    expect([...view.expanded]).toEqual(['orders']);
  });
});
