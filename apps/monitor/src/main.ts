// The zbus monitor: builds the page's one MonitorState, the feed that fills it from the broker that served
// the page, the view that draws it, and the controls that change it, and hands each the same Monitor.
import { MqClient } from '@zbus/client-browser';
import { bindControls } from './controls.js';
import { authEnabled, Feed } from './feed.js';
import { createState, type Monitor } from './state.js';
import { PageView } from './views.js';

/** The "updated … ago" text and the ages tick even when nothing arrives. */
const TICK_MS = 1000;
const REQUEST_TIMEOUT_MS = 10_000;

const state = createState();
const page = new PageView(state);
const client = new MqClient(location.host, { timeout: REQUEST_TIMEOUT_MS });
const feed = new Feed(client, state, {
  changed: () => page.schedule(),
  connection: (s) => page.showConnection(s),
});
const app: Monitor = {
  state,
  client,
  schedule: () => page.schedule(),
  refresh: () => void feed.poll(),
  showFilter: () => page.showFilter(),
};
bindControls(app, page.table);
setInterval(app.schedule, TICK_MS);
void authEnabled().then((on) => page.showLogout(on));
void feed.start();
