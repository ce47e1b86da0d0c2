// The Clawmesh dashboard. The page holds no data: it reads /dashboard/api/... with the API key
// (asked for once, kept in this tab's sessionStorage) and renders each section, again every few
// seconds while the tab is visible. Everything is built with textContent: no data becomes HTML.

const KEY_STORAGE = 'clawmesh.dashboard.key';
const REFRESH_MS = 5000;
const CONVERSATIONS = 20;
const AUDIT_LINES = 50;

const $ = (id) => document.getElementById(id);

/** The server wants an API key (none given, or the one given was refused). */
class NeedsKey extends Error {}

const state = {
  /** The conversation shown in detail. */
  selected: selectedFromAddress(),
  /** The JSON last rendered per section, so an unchanged section keeps its DOM (and focus). */
  painted: new Map(),
  timer: undefined,
  running: false,
};

// ---- data -------------------------------------------------------------------------------

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

async function api(path) {
  const headers = { accept: 'application/json' };
  const key = storedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch(`/dashboard/api/${path}`, { headers, cache: 'no-store' });
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const message = body?.error?.message ?? `HTTP ${response.status}`;
  if (response.status === 401) throw new NeedsKey(message);
  if (!response.ok) throw Object.assign(new Error(message), { status: response.status });
  return body;
}

// ---- DOM helpers ------------------------------------------------------------------------

/** Creates an element: `h('td', { class: 'num' }, '42')`. Strings become text nodes. */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/**
 * A table with a caption and column headers; the first cell of each row is its row header.
 * `columns`: `{ label, numeric, nowrap }`; `rows`: arrays of cells (text or nodes), or
 * `{ props, cells }` to give the row attributes.
 */
function table({ caption, columns, rows, foot, className }) {
  const classOf = (column) =>
    [column?.numeric ? 'num' : '', column?.nowrap ? 'nowrap' : ''].filter(Boolean).join(' ') || undefined;
  const cell = (value, index, header) => {
    const props = { class: classOf(columns[index]) };
    return header ? h('th', { scope: 'row', ...props }, value) : h('td', props, value);
  };
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: className },
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col', class: classOf(c) }, c.label)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            row.props ?? {},
            (row.cells ?? row).map((value, i) => cell(value, i, i === 0)),
          ),
        ),
      ),
      foot
        ? h(
            'tfoot',
            {},
            h(
              'tr',
              {},
              foot.map((value, i) => cell(value, i, i === 0)),
            ),
          )
        : undefined,
    ),
  );
}

const muted = (text) => h('p', { class: 'muted' }, text);
const badge = (ok, yes, no) => h('span', { class: `badge ${ok ? 'ok' : 'bad'}` }, ok ? yes : no);
const count = (n) => (typeof n === 'number' ? n.toLocaleString('en') : '—');
const ms = (n) =>
  typeof n === 'number' ? `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en')} ms` : '—';
const usd = (n) => `$${n.toFixed(n !== 0 && n < 0.01 ? 6 : 4)}`;
const time = (at) => (at ? new Date(at).toLocaleTimeString() : '—');
const dateTime = (at) => (at ? new Date(at).toLocaleString() : '—');
const clip = (text, max = 140) => {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max)}…` : s;
};
const json = (value) =>
  h(
    'pre',
    { class: 'json' },
    h('code', {}, typeof value === 'string' ? value : JSON.stringify(value, null, 2)),
  );

function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

function definitions(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );
}

// ---- sections ---------------------------------------------------------------------------

function renderServices(view) {
  const p = view.process;
  const parts = [
    definitions([
      ['Process', `${p.name} ${p.version}`],
      ['Instance', p.instance],
      ['Roles', p.roles.join(', ')],
      ['Transport', p.transport],
      ['Up for', `${duration(p.uptimeSeconds)} (since ${dateTime(p.startedAt)})`],
      ['Health', badge(p.status === 'ready', 'ready', 'not ready')],
    ]),
    table({
      caption: 'Readiness checks of this process',
      columns: [
        { label: 'Check' },
        { label: 'Status' },
        { label: 'Time', numeric: true },
        { label: 'Detail' },
      ],
      rows: p.checks.map((c) => [c.name, badge(c.ok, 'ok', 'failing'), ms(c.durationMs), c.error ?? '']),
    }),
  ];
  const d = view.discovery;
  if (!d) {
    parts.push(
      muted(
        p.transport === 'local'
          ? 'Every service runs in this process (local transport).'
          : `No discovery over the ${p.transport} transport: each process shows itself.`,
      ),
    );
  } else if (!d.ok) {
    parts.push(h('p', { class: 'error-text' }, `Discovery (${d.kind}) failed: ${d.error}`));
  } else if (d.instances.length === 0) {
    parts.push(muted(`No service instance answered discovery (${d.kind}).`));
  } else {
    parts.push(
      table({
        caption: `Instances found by ${d.kind} discovery`,
        columns: [
          { label: 'Service' },
          { label: 'Instance' },
          { label: 'Version' },
          { label: 'Started', nowrap: true },
          { label: 'Requests', numeric: true },
          { label: 'Errors', numeric: true },
          { label: 'Average', numeric: true },
          { label: 'Health' },
        ],
        rows: d.instances.map((i) => [
          i.contract ?? i.name,
          h(
            'span',
            { title: `NATS service id ${i.id}${i.host ? ` on ${i.host}` : ''}` },
            `${i.process ?? i.id.slice(0, 10)}${i.local ? ' (this process)' : ''}`,
          ),
          i.version,
          time(i.started),
          count(i.requests),
          count(i.errors),
          ms(averageOf(i.endpoints)),
          h(
            'span',
            {},
            badge(true, 'up', ''),
            i.lastError ? h('span', { class: 'detail' }, ` last error: ${i.lastError}`) : '',
          ),
        ]),
      }),
    );
  }
  return parts;
}

function averageOf(endpoints) {
  let requests = 0;
  let total = 0;
  for (const e of endpoints) {
    requests += e.requests;
    total += e.averageMs * e.requests;
  }
  return requests > 0 ? total / requests : undefined;
}

function renderUsage(view) {
  if (!view.available) return muted(view.reason);
  if (view.models.length === 0) return muted(`No model calls since ${dateTime(view.since)}.`);
  const cost = (m) => (m.priced ? usd(m.costUsd) : '—');
  return [
    table({
      caption: `Model calls since ${dateTime(view.since)}`,
      columns: [
        { label: 'Model' },
        { label: 'Requests', numeric: true },
        { label: 'Cached', numeric: true },
        { label: 'Fallbacks', numeric: true },
        { label: 'Tokens in', numeric: true },
        { label: 'Tokens out', numeric: true },
        { label: 'Cost', numeric: true },
        { label: 'Avg latency', numeric: true },
      ],
      rows: view.models.map((m) => [
        m.model,
        count(m.requests),
        count(m.cached),
        count(m.fallbacks),
        count(m.inputTokens),
        count(m.outputTokens),
        cost(m),
        ms(m.averageLatencyMs),
      ]),
      foot: [
        'Total',
        count(view.totals.requests),
        '',
        '',
        count(view.totals.inputTokens),
        count(view.totals.outputTokens),
        view.models.some((m) => m.priced) ? usd(view.totals.costUsd) : '—',
        '',
      ],
    }),
    h(
      'p',
      { class: 'hint' },
      'Cached answers used no provider tokens and are not in the token and cost sums.',
    ),
  ];
}

function conversationButton(id, label = id) {
  return h(
    'button',
    {
      type: 'button',
      class: 'link',
      'aria-controls': 'conversation',
      'aria-current': state.selected === id ? 'true' : undefined,
      title: label === id ? undefined : id,
      dataset: { conversation: id, focusKey: `open:${id}:${label === id ? 'full' : 'short'}` },
      onclick: () => openConversation(id),
    },
    label,
  );
}

function renderConversations(view) {
  if (!view.available) return muted(view.reason);
  if (view.conversations.length === 0) return muted('No conversations yet.');
  return table({
    caption: `The ${view.conversations.length} most recently active conversations`,
    className: 'conversations',
    columns: [
      { label: 'Conversation' },
      { label: 'Agent' },
      { label: 'Channel' },
      { label: 'User' },
      { label: 'Messages', numeric: true },
      { label: 'Updated', nowrap: true },
      { label: 'Latest message' },
    ],
    rows: view.conversations.map((c) => ({
      props: { class: c.id === state.selected ? 'selected' : undefined, dataset: { conversation: c.id } },
      cells: [
        conversationButton(c.id),
        c.agentId,
        c.channel,
        c.peer,
        count(c.messageCount),
        time(c.updatedAt),
        clip(c.preview, 80),
      ],
    })),
  });
}

function renderConversation(view) {
  const c = view.conversation;
  const parts = [
    definitions([
      ['Conversation', c.id],
      ['Agent', c.agentId],
      ['Channel', c.channel],
      ['User', c.peer],
      ['Messages', count(c.messageCount)],
      ['Started', dateTime(c.createdAt)],
    ]),
  ];
  if (view.truncated) parts.push(muted('Older messages are not shown.'));
  if (view.turns.length === 0) parts.push(muted('No messages yet.'));
  parts.push(
    h(
      'ol',
      { class: 'turns' },
      view.turns.map((turn, index) =>
        h(
          'li',
          { class: 'turn' },
          h(
            'article',
            { 'aria-labelledby': `turn-${turn.seq}` },
            h(
              'h3',
              { id: `turn-${turn.seq}` },
              `Turn ${index + 1}`,
              h(
                'span',
                { class: 'muted' },
                ` · ${dateTime(turn.at)} · ${turn.steps} model step${turn.steps === 1 ? '' : 's'}`,
              ),
            ),
            turn.user !== undefined
              ? h('p', { class: 'said user' }, h('strong', {}, 'User: '), turn.user)
              : '',
            turn.toolCalls.length > 0
              ? table({
                  caption: 'Tool calls',
                  className: 'tool-calls',
                  columns: [
                    { label: 'Tool' },
                    { label: 'Arguments' },
                    { label: 'Result' },
                    { label: 'Status' },
                  ],
                  rows: turn.toolCalls.map((call) => ({
                    props: { class: 'tool-call' },
                    cells: [
                      call.skill ? `${call.skill}.${call.tool}` : call.name,
                      json(call.arguments),
                      call.ok === false ? call.error : call.ok ? json(call.result) : '',
                      call.ok === undefined ? badge(false, '', 'no result') : badge(call.ok, 'ok', 'failed'),
                    ],
                  })),
                })
              : '',
            turn.reply !== undefined
              ? h('p', { class: 'said reply' }, h('strong', {}, 'Reply: '), turn.reply)
              : '',
          ),
        ),
      ),
    ),
  );
  return parts;
}

function summary(event) {
  const d = event.data ?? {};
  switch (event.type) {
    case 'message.received':
      return `${d.userId ?? '?'} on ${d.channel ?? '?'}: ${clip(d.text)}`;
    case 'response.generated':
      return `${clip(d.text)} (${d.toolCalls ?? 0} tool calls, ${ms(d.durationMs)})`;
    case 'skill.invoked':
      return `${d.skill}.${d.tool} ${d.ok ? 'ok' : `failed${d.error ? `: ${d.error}` : ''}`} in ${ms(d.durationMs)}`;
    case 'model.completed':
      return `${d.model}: ${count(d.inputTokens)} tokens in, ${count(d.outputTokens)} out, ${ms(d.latencyMs)}${d.cached ? ', cached' : ''}${d.fallbackUsed ? ', fallback' : ''}`;
    default:
      return clip(JSON.stringify(d));
  }
}

function renderAudit(view) {
  if (!view.available) return muted(view.reason);
  if (view.events.length === 0) return muted(`No events in ${view.file} yet.`);
  const parts = [
    table({
      caption: `The newest ${view.events.length} events of ${view.file}, newest first`,
      className: 'audit',
      columns: [
        { label: 'Time', nowrap: true },
        { label: 'Event', nowrap: true },
        { label: 'Conversation', nowrap: true },
        { label: 'Summary' },
      ],
      rows: view.events.map((e) => {
        const id = e.data?.conversationId;
        return {
          props: { class: 'audit-line' },
          cells: [time(e.time), e.type, id ? conversationButton(id, `${id.slice(0, 12)}…`) : '—', summary(e)],
        };
      }),
    }),
  ];
  if (view.skipped > 0)
    parts.push(muted(`${view.skipped} unreadable line${view.skipped === 1 ? '' : 's'} skipped.`));
  return parts;
}

// ---- painting and refreshing ------------------------------------------------------------

/** Renders a section when its data changed, keeping the focus on the same control. */
function paint(section, data, render) {
  const text = JSON.stringify(data);
  if (state.painted.get(section) === text) return;
  state.painted.set(section, text);
  const body = $(`${section}-body`);
  const focused = body.contains(document.activeElement)
    ? document.activeElement?.dataset?.focusKey
    : undefined;
  body.replaceChildren(...[render(data)].flat());
  if (focused) body.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}

function setStatus(kind, text) {
  $('status').dataset.state = kind;
  $('status-text').textContent = text;
}

function setError(text) {
  const el = $('error');
  if (el.textContent !== text) el.textContent = text;
  el.hidden = !text;
}

function showDashboard() {
  $('key-form').hidden = true;
  $('main').hidden = false;
  $('forget-key').hidden = !storedKey();
}

function askForKey(reason) {
  const hadKey = Boolean(storedKey());
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage off: the key is asked for again each time
  }
  clearTimeout(state.timer);
  state.painted.clear();
  $('main').hidden = true;
  $('forget-key').hidden = true;
  $('key-form').hidden = false;
  $('key-reason').textContent = hadKey
    ? `The key was refused (${reason}). Enter a valid API key.`
    : 'This dashboard is protected by the gateway’s API keys. Enter one to see it.';
  setStatus('locked', 'API key needed');
  setError('');
  $('key-input').focus();
}

function sections() {
  const list = [
    ['services', 'services', renderServices],
    ['usage', 'usage', renderUsage],
    ['conversations', `conversations?limit=${CONVERSATIONS}`, renderConversations],
    ['audit', `audit?limit=${AUDIT_LINES}`, renderAudit],
  ];
  if (state.selected) {
    list.push(['conversation', `conversations/${encodeURIComponent(state.selected)}`, renderConversation]);
  }
  return list;
}

async function refresh() {
  if (state.running) return;
  state.running = true;
  clearTimeout(state.timer);
  let locked = false;
  try {
    const list = sections();
    const results = await Promise.allSettled(list.map(([, path]) => api(path)));
    const refused = results.find((r) => r.status === 'rejected' && r.reason instanceof NeedsKey);
    if (refused) {
      locked = true;
      askForKey(refused.reason.message);
      return;
    }
    showDashboard();
    const failures = [];
    results.forEach((result, index) => {
      const [section, , render] = list[index];
      if (result.status === 'fulfilled') {
        paint(section, result.value, render);
      } else if (section === 'conversation' && result.reason.status === 404) {
        state.painted.delete('conversation');
        $('conversation-body').replaceChildren(muted(result.reason.message));
      } else {
        failures.push(`${section}: ${result.reason.message}`);
      }
    });
    setError(failures.length > 0 ? `Some sections could not be loaded — ${failures.join('; ')}` : '');
    setStatus(failures.length > 0 ? 'error' : 'ok', `Updated ${new Date().toLocaleTimeString()}`);
  } finally {
    state.running = false;
    if (!locked) schedule();
  }
}

function schedule() {
  clearTimeout(state.timer);
  if (!document.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

/** The conversation the address names (`#conversation=<id>`); none for another or a mangled one. */
function selectedFromAddress() {
  const match = /^#conversation=(.+)$/.exec(location.hash);
  try {
    return match ? decodeURIComponent(match[1]) : undefined;
  } catch {
    // A cut or mangled link (`%E0%A4`): show no conversation rather than no page.
    return undefined;
  }
}

async function openConversation(id) {
  state.selected = id;
  history.replaceState(null, '', `#conversation=${encodeURIComponent(id)}`);
  for (const button of document.querySelectorAll('button[data-conversation]')) {
    if (button.dataset.conversation === id) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  for (const row of document.querySelectorAll('tr[data-conversation]')) {
    row.classList.toggle('selected', row.dataset.conversation === id);
  }
  // The lists re-render with the new selection on their next change.
  state.painted.delete('conversations');
  state.painted.delete('conversation');
  $('conversation-body').replaceChildren(muted('Loading…'));
  $('conversation-title').focus();
  try {
    paint('conversation', await api(`conversations/${encodeURIComponent(id)}`), renderConversation);
  } catch (err) {
    if (err instanceof NeedsKey) askForKey(err.message);
    else $('conversation-body').replaceChildren(h('p', { class: 'error-text' }, err.message));
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('key-input').value.trim();
  if (!key) return;
  try {
    sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage off: nothing to keep it in
  }
  $('key-input').value = '';
  refresh();
});
$('forget-key').addEventListener('click', () => {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing stored
  }
  state.painted.clear();
  refresh();
});
$('refresh').addEventListener('click', () => refresh());
// A link to another conversation opened in this tab changes only the address.
window.addEventListener('hashchange', () => {
  const id = selectedFromAddress();
  if (id && id !== state.selected) openConversation(id);
});
document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearTimeout(state.timer);
  else refresh();
});

refresh();
