// What the page knows, in one object that main.ts creates and hands to the views, dialogs and controls: the
// broker's data (Model), the tracker's view, the last poll error, and what the topics table shows, which also
// lives in the URL fragment (`#q=orders&sort=backlog&desc=1`) so that a reload or a shared link shows the same.
import type { MqClient, TrackerInfo } from '@zbus/client-browser';
import { Model } from './model.js';
import { isSortKey, type TableState } from './topics.js';

export interface MonitorState {
  readonly model: Model;
  readonly view: TableState;
  /** The latest `track_pub`/`track_sub` answer; undefined from a broker without tracker support. */
  tracker: TrackerInfo | undefined;
  /** Why the last poll failed; '' after a good one. */
  lastError: string;
}

/** What views, dialogs and controls act through. */
export interface Monitor {
  readonly state: MonitorState;
  readonly client: MqClient;
  /** Renders in the next animation frame, once for any number of calls. */
  schedule(): void;
  /** Queries the broker now (after an action changed something), then renders. */
  refresh(): void;
  /** Puts the view's search text and kind into their inputs, after they changed elsewhere. */
  showFilter(): void;
}

export function createState(): MonitorState {
  return {
    model: new Model(),
    view: { search: '', kind: '', sort: 'name', desc: false, page: 0, expanded: new Set() },
    tracker: undefined,
    lastError: '',
  };
}

/** Sets the filter, sort and page from a URL fragment (without its `#`); the open details stay. */
export function readFragment(view: TableState, fragment: string): void {
  const p = new URLSearchParams(fragment);
  view.search = p.get('q') ?? '';
  view.kind = p.get('show') ?? '';
  const sort = p.get('sort') ?? 'name';
  view.sort = isSortKey(sort) ? sort : 'name';
  view.desc = p.get('desc') === '1';
  view.page = Math.max(0, Number(p.get('page') ?? 1) - 1 || 0);
}

/** The URL fragment (without its `#`) of the filter, sort and page; '' for the default view. */
export function fragmentOf(view: TableState): string {
  const p = new URLSearchParams();
  if (view.search) p.set('q', view.search);
  if (view.kind) p.set('show', view.kind);
  if (view.sort !== 'name') p.set('sort', view.sort);
  if (view.desc) p.set('desc', '1');
  if (view.page > 0) p.set('page', String(view.page + 1));
  return p.toString();
}
