// The operator console: a page over the dlq-replayer's admin API, nothing more. Every value that
// comes from a record (keys, headers, payloads, error messages) is put in the page with
// textContent, never as markup, and the page's Content-Security-Policy runs no other script.

type Json = Record<string, unknown>;

interface Session {
  token: string;
  operator: string;
}

const SESSION_KEY = 'sluice-console-session';
const FILTER_FIELDS = ['topic', 'stage', 'code', 'key', 'from', 'to', 'status', 'header'] as const;
const FILTER_LABELS: Record<string, string> = { from: 'failed from', to: 'failed before', header: 'header (name=value)' };

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

/** What an error from the API means, in words. */
function explain(err: unknown): string {
  if (!(err instanceof ApiError)) return `The console could not reach the service (${err instanceof Error ? err.message : String(err)}).`;
  const words: Record<string, string> = {
    UNAUTHORIZED: 'The admin token was refused: sign in again with the right token.',
    REPLAY_CONFLICT: 'Some of these dead letters are already being replayed by a replay that is still running. Wait for it, or cancel it, and try again.',
    NOT_PENDING: 'Only a pending dead letter can be discarded; this one was replayed or discarded already.',
    NOT_FOUND: 'Not found: it may have been removed.',
    INVALID_FILTER: 'The filter is not valid.',
    INVALID_REQUEST: 'The request is not valid.',
  };
  const problems = Array.isArray(err.details) ? (err.details as { field?: string; message?: string }[]).map((p) => `${p.field ?? ''} ${p.message ?? ''}`.trim()) : [];
  return [words[err.code] ?? `The service answered ${err.status}.`, err.message, ...problems].filter(Boolean).join(' ');
}

function session(): Session | undefined {
  const raw = sessionStorage.getItem(SESSION_KEY);
  return raw ? (JSON.parse(raw) as Session) : undefined;
}

async function api<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
  const s = session();
  const headers: Record<string, string> = { authorization: `Bearer ${s?.token ?? ''}`, 'x-operator': s?.operator ?? '' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const parsed = (await res.json().catch(() => ({}))) as Json;
  if (!res.ok) {
    const error = (parsed.error ?? {}) as { code?: string; message?: string; details?: unknown };
    if (res.status === 401 && s) signOut('Your token was refused: sign in again.');
    throw new ApiError(res.status, error.code ?? String(res.status), error.message ?? '', error.details);
  }
  return parsed as T;
}

// ---- DOM helpers: elements with text, never markup ----

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) if (child !== null && child !== undefined) node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return node;
}

function table(caption: string, headers: string[], rows: (string | number | Node)[][], numeric: number[] = []): HTMLTableElement {
  return el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headers.map((h, i) => el('th', { scope: 'col', ...(numeric.includes(i) ? { class: 'num' } : {}) }, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c, i) => el('td', numeric.includes(i) ? { class: 'num' } : {}, typeof c === 'object' ? c : String(c)))))),
  );
}

/** A region that scrolls sideways on a narrow window: reachable by keyboard, and named. */
function scroller(label: string, ...children: Node[]): HTMLDivElement {
  return el('div', { class: 'wide', tabindex: '0', role: 'region', 'aria-label': label }, ...children);
}

function button(label: string, onClick: () => void | Promise<void>, secondary = false): HTMLButtonElement {
  const b = el('button', { type: 'button', ...(secondary ? { class: 'secondary' } : {}) }, label);
  b.addEventListener('click', () => void onClick());
  return b;
}

const page = () => document.getElementById('page')!;
let timer: number | undefined;

function show(title: string, ...content: Node[]): void {
  const p = page();
  p.replaceChildren(el('h2', { id: 'page-title' }, title), ...content);
  p.setAttribute('aria-labelledby', 'page-title');
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    if (a.getAttribute('href') === location.hash.split('?')[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function failure(err: unknown): HTMLParagraphElement {
  return el('p', { class: 'error', role: 'alert' }, explain(err));
}

// ---- sign-in ----

function signedIn(): void {
  document.getElementById('sign-in-page')!.hidden = true;
  document.getElementById('nav')!.hidden = false;
  page().hidden = false;
  if (!location.hash || location.hash === '#sign-in') location.hash = '#overview';
  else void route();
}

function signOut(message = ''): void {
  sessionStorage.removeItem(SESSION_KEY);
  window.clearInterval(timer);
  page().hidden = true;
  page().replaceChildren();
  document.getElementById('nav')!.hidden = true;
  document.getElementById('sign-in-page')!.hidden = false;
  document.getElementById('sign-in-error')!.textContent = message;
  (document.getElementById('token') as HTMLInputElement).value = '';
  document.getElementById('token')!.focus();
}

async function onSignIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const token = (document.getElementById('token') as HTMLInputElement).value;
  const operator = (document.getElementById('operator') as HTMLInputElement).value.trim();
  const error = document.getElementById('sign-in-error')!;
  error.textContent = '';
  const res = await fetch('/admin/overview', { headers: { authorization: `Bearer ${token}`, 'x-operator': operator } }).catch(() => undefined);
  if (!res) {
    error.textContent = 'The service does not answer.';
    return;
  }
  if (res.status === 401) {
    error.textContent = 'Wrong token: the service refused it.';
    return;
  }
  if (!res.ok) {
    error.textContent = `The service answered ${res.status}.`;
    return;
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, operator }));
  signedIn();
}

// ---- overview ----

interface Overview {
  groups: { topic: string; stage: string; code: string; status: string; count: number }[];
  hourly: { hour: string; count: number }[];
  lag: { group: string; topic: string; partition: number; committed: string | null; end: string; lag: number }[];
}

async function overview(): Promise<void> {
  const render = async () => {
    let data: Overview;
    try {
      data = await api<Overview>('GET', '/admin/overview');
    } catch (err) {
      show('Overview', failure(err));
      return;
    }
    const total = (status: string) => data.groups.filter((g) => g.status === status).reduce((n, g) => n + g.count, 0);
    const cards = el(
      'div',
      { class: 'cards' },
      ...['pending', 'replayed', 'discarded'].map((s) => el('div', { class: 'card', 'data-status': s }, el('strong', {}, String(total(s))), `${s}`)),
    );
    const rows = new Map<string, { topic: string; stage: string; code: string; pending: number; replayed: number; discarded: number }>();
    for (const g of data.groups) {
      const k = `${g.topic}\u0000${g.stage}\u0000${g.code}`;
      const row = rows.get(k) ?? { topic: g.topic, stage: g.stage, code: g.code, pending: 0, replayed: 0, discarded: 0 };
      row[g.status as 'pending' | 'replayed' | 'discarded'] += g.count;
      rows.set(k, row);
    }
    const byCause = table(
      'Dead letters by topic, stage and error code',
      ['Topic', 'Stage', 'Code', 'Pending', 'Replayed', 'Discarded'],
      [...rows.values()].map((r) => [r.topic, r.stage, r.code, r.pending, r.replayed, r.discarded]),
      [3, 4, 5],
    );
    // One bar per hour of the last 24, the empty ones included.
    const counted = new Map(data.hourly.map((h) => [Date.parse(h.hour), h.count]));
    const thisHour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const hours = Array.from({ length: 24 }, (_, i) => thisHour - (23 - i) * 3_600_000).map((t) => ({ hour: new Date(t).toISOString(), count: counted.get(t) ?? 0 }));
    const max = Math.max(1, ...hours.map((h) => h.count));
    const described = hours.filter((h) => h.count > 0).map((h) => `${h.hour.slice(11, 16)} UTC: ${h.count}`);
    const chart = el('div', { class: 'chart', role: 'img', 'aria-label': `Dead letters per hour over the last 24 hours: ${described.join(', ') || 'none'}` });
    for (const h of hours) {
      const bar = el('div', { class: 'bar', title: `${h.hour}: ${h.count}` });
      bar.style.height = `${Math.round((100 * h.count) / max)}%`;
      chart.append(bar);
    }
    const lag = table(
      'Consumer lag of the pipeline stages (from Kafka)',
      ['Group', 'Topic', 'Partition', 'Committed', 'End', 'Lag'],
      data.lag.map((l) => [l.group, l.topic, l.partition, l.committed ?? 'none', l.end, l.lag]),
      [2, 3, 4, 5],
    );
    show(
      'Overview',
      cards,
      scroller('Dead letters by cause', byCause),
      el('h3', {}, 'Dead letters over time (per hour, last 24 hours)'),
      chart,
      scroller('Consumer lag', lag),
      el('p', { class: 'note' }, `Refreshed ${new Date().toLocaleTimeString()}; every 5 seconds.`),
    );
  };
  await render();
  timer = window.setInterval(() => void render(), 5_000);
}

// ---- dead letters ----

interface DeadLetterSummary {
  id: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  key: string | null;
  errorCode: string;
  errorMessage: string;
  stage: string;
  failedAt: string;
  status: string;
  replayCount: number;
}

function filterFromHash(): Record<string, string> {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const filter: Record<string, string> = {};
  for (const f of FILTER_FIELDS) {
    const v = params.get(f);
    if (v) filter[f] = v;
  }
  return filter;
}

async function deadLetters(): Promise<void> {
  const filter = filterFromHash();
  const form = el('form', { id: 'filter', 'aria-label': 'Filter dead letters' });
  for (const f of FILTER_FIELDS) {
    const id = `filter-${f}`;
    const input =
      f === 'status'
        ? el('select', { id, name: f }, el('option', { value: '' }, 'any'), ...['pending', 'replayed', 'discarded'].map((s) => el('option', { value: s }, s)))
        : el('input', { id, name: f, type: 'text', ...(f === 'from' || f === 'to' ? { placeholder: '2026-01-31T00:00:00Z' } : f === 'header' ? { placeholder: 'dlq.replay.id=…' } : {}) });
    (input as HTMLInputElement).value = filter[f] ?? '';
    form.append(el('label', { for: id }, FILTER_LABELS[f] ?? f, input));
  }
  form.append(el('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const f of FILTER_FIELDS) {
      const v = (form.elements.namedItem(f) as HTMLInputElement).value.trim();
      if (v) params.set(f, v);
    }
    location.hash = `#dead-letters?${params.toString()}`;
  });

  const results = scroller('Dead letters matching the filter');
  const actions = el('div', { id: 'actions' });
  const detail = el('div', { id: 'detail' });
  show('Dead letters', form, actions, results, detail);

  const selected = new Set<string>();
  let cursor: string | null = null;
  const tbody = el('tbody');
  const load = async () => {
    const query = new URLSearchParams({ ...filter, limit: '50', ...(cursor ? { cursor } : {}) });
    let pageData: { deadLetters: DeadLetterSummary[]; nextCursor: string | null };
    try {
      pageData = await api('GET', `/admin/dlq?${query.toString()}`);
    } catch (err) {
      results.replaceChildren(failure(err));
      return;
    }
    for (const d of pageData.deadLetters) {
      const box = el('input', { type: 'checkbox', 'aria-label': `Select dead letter ${d.id}` });
      box.addEventListener('click', (e) => e.stopPropagation());
      box.addEventListener('change', () => (box.checked ? selected.add(d.id) : selected.delete(d.id)));
      const open = el('button', { type: 'button', class: 'secondary', 'aria-label': `Open dead letter ${d.id}` }, d.id);
      open.addEventListener('click', () => void showDetail(d.id, detail));
      tbody.append(
        el(
          'tr',
          { 'data-id': d.id },
          el('td', {}, box),
          el('td', {}, open),
          el('td', {}, d.sourceTopic),
          el('td', {}, d.stage),
          el('td', {}, d.errorCode),
          el('td', {}, d.key ?? '(none)'),
          el('td', {}, d.failedAt),
          el('td', {}, d.status),
          el('td', { class: 'num' }, String(d.replayCount)),
        ),
      );
    }
    cursor = pageData.nextCursor;
    more.hidden = cursor === null;
    count.textContent = `${tbody.children.length} shown${cursor ? ', more below' : ''}.`;
  };
  const more = button('Show more', load, true);
  const count = el('p', { class: 'note' });
  results.replaceChildren(
    el(
      'table',
      { id: 'dead-letter-table' },
      el('caption', {}, 'Dead letters matching the filter'),
      el('thead', {}, el('tr', {}, ...['Select', 'Id', 'Topic', 'Stage', 'Code', 'Key', 'Failed at', 'Status', 'Replays'].map((h) => el('th', { scope: 'col' }, h)))),
      tbody,
    ),
    count,
    more,
  );
  actions.replaceChildren(replayPanel(filter, selected), exportPanel(filter));
  await load();
}

async function showDetail(id: string, into: HTMLElement): Promise<void> {
  let d: Json;
  try {
    d = await api('GET', `/admin/dlq/${encodeURIComponent(id)}`);
  } catch (err) {
    into.replaceChildren(failure(err));
    return;
  }
  const headers = Object.entries((d.headers ?? {}) as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  const reason = el('input', { id: 'discard-reason', type: 'text', maxlength: '1000' });
  const outcome = el('p', { role: 'status' });
  const discard = button('Discard', async () => {
    try {
      await api('POST', `/admin/dlq/${encodeURIComponent(id)}/discard`, { reason: reason.value });
      outcome.textContent = 'Discarded.';
    } catch (err) {
      outcome.replaceChildren(failure(err));
    }
  });
  into.replaceChildren(
    el(
      'section',
      { class: 'detail', 'aria-labelledby': 'detail-title' },
      el('h3', { id: 'detail-title', tabindex: '-1' }, `Dead letter ${String(d.id)}`),
      table('Where it failed', ['Field', 'Value'], [
        ['Topic', `${String(d.sourceTopic)} [${String(d.sourcePartition)}] @ ${String(d.sourceOffset)}`],
        ['Stage', String(d.stage)],
        ['Error code', String(d.errorCode)],
        ['Error message', String(d.errorMessage)],
        ['Failed at', String(d.failedAt)],
        ['Key', d.key === null ? '(none)' : String(d.key)],
        ['Status', String(d.status)],
        ['Replays', String(d.replayCount)],
        ...(d.discardReason ? [['Discard reason', String(d.discardReason)]] : []),
      ]),
      el('h4', {}, 'Payload, decoded'),
      d.decodeError ? el('p', { class: 'error' }, `It does not decode: ${String(d.decodeError)}`) : el('pre', { id: 'decoded', tabindex: '0', 'aria-label': 'Payload, decoded' }, JSON.stringify(d.decoded, null, 2)),
      el('h4', {}, 'Raw value (base64)'),
      el('pre', { id: 'raw', tabindex: '0', 'aria-label': 'Raw value (base64)' }, String(d.valueBase64 ?? '(null)')),
      table('Headers', ['Name', 'Value'], headers),
      table(
        'Replays of this dead letter',
        ['Replay', 'Started', 'By', 'Target topic', 'This record', 'The replay'],
        ((d.history as { replays?: Json[] } | undefined)?.replays ?? []).map((r) => [String(r.replayId), String(r.createdAt), String(r.requestedBy), String(r.targetTopic), String(r.itemStatus), String(r.replayStatus)]),
      ),
      table(
        'Audit entries naming it',
        ['When', 'Who', 'What', 'Details'],
        ((d.history as { audit?: Json[] } | undefined)?.audit ?? []).map((a) => [String(a.at), String(a.actor), String(a.action), a.details === null ? '' : JSON.stringify(a.details)]),
      ),
      el('h4', {}, 'Discard'),
      el('label', { for: 'discard-reason' }, 'Reason', reason),
      discard,
      outcome,
    ),
  );
  document.getElementById('detail-title')?.focus();
}

/** Export of everything matching the filter, through the API (the token goes with the request), saved as a file. */
function exportPanel(filter: Record<string, string>): HTMLElement {
  const payload = el('input', { id: 'export-payload', type: 'checkbox' });
  const out = el('p', { id: 'export-outcome', role: 'status' });
  const save = (format: 'jsonl' | 'csv') => async () => {
    const s = session();
    const query = new URLSearchParams({ ...filter, format, payload: String(payload.checked) });
    try {
      const res = await fetch(`/admin/dlq/export?${query.toString()}`, { headers: { authorization: `Bearer ${s?.token ?? ''}`, 'x-operator': s?.operator ?? '' } });
      if (!res.ok) {
        const error = ((await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: unknown } }).error ?? {};
        throw new ApiError(res.status, error.code ?? String(res.status), error.message ?? '', error.details);
      }
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `dead-letters.${format}`;
      const url = URL.createObjectURL(await res.blob());
      const link = el('a', { href: url, download: name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      out.textContent = `Saved ${name}.`;
    } catch (err) {
      out.replaceChildren(failure(err));
    }
  };
  return el(
    'section',
    { 'aria-labelledby': 'export-title' },
    el('h3', { id: 'export-title' }, 'Export'),
    el('div', { class: 'cards' }, el('label', { for: 'export-payload' }, 'Include payloads', payload), button('Export JSON Lines', save('jsonl')), button('Export CSV', save('csv'))),
    out,
  );
}

/** Replay: a dry run first, then the replay itself with its progress, which can be cancelled. */
function replayPanel(filter: Record<string, string>, selected: Set<string>): HTMLElement {
  const rate = el('input', { id: 'replay-rate', type: 'number', min: '1', max: '100000', value: '100' });
  const target = el('input', { id: 'replay-target', type: 'text', placeholder: 'the original topic' });
  const which = el(
    'select',
    { id: 'replay-which' },
    el('option', { value: 'filter' }, 'everything matching the filter'),
    el('option', { value: 'selected' }, 'the selected rows'),
  );
  const out = el('div', { id: 'replay-outcome', role: 'status' });
  const request = (dryRun: boolean): Json => {
    const body: Json = which.value === 'selected' ? { ids: [...selected] } : { filter: { status: 'pending', ...filter } };
    if (dryRun) body.dryRun = true;
    else body.ratePerSec = Number(rate.value);
    if (target.value.trim()) body.targetTopic = target.value.trim();
    return body;
  };
  const dry = button('Dry run', async () => {
    try {
      const r = await api('POST', '/admin/dlq/replays', request(true));
      const skipped = (r.skipped as unknown[] | undefined)?.length ?? 0;
      const refused = (r.refused as unknown[] | undefined)?.length ?? 0;
      out.replaceChildren(
        el('p', { id: 'dry-run' }, `Dry run: ${String(r.selected)} would be replayed, ${skipped} skipped (replayed already), ${refused} refused (the loop guard, or a topic not allowed).`),
        start,
      );
      start.focus();
    } catch (err) {
      out.replaceChildren(failure(err));
    }
  });
  const start = button('Start the replay', async () => {
    let replayId: string;
    try {
      replayId = String((await api('POST', '/admin/dlq/replays', request(false))).replayId);
    } catch (err) {
      out.replaceChildren(failure(err));
      return;
    }
    const bar = el('progress', { id: 'replay-progress', max: '100', value: '0', 'aria-label': 'Replay progress' });
    const words = el('p');
    const cancel = button('Cancel the replay', async () => {
      await api('POST', `/admin/dlq/replays/${replayId}/cancel`).catch((err: unknown) => out.append(failure(err)));
    }, true);
    out.replaceChildren(bar, words, cancel);
    for (;;) {
      const r = await api('GET', `/admin/dlq/replays/${replayId}`).catch(() => undefined);
      if (r) {
        const counts = (r.counts ?? {}) as Record<string, number>;
        const done = Object.entries(counts).filter(([k]) => k !== 'pending' && k !== 'producing').reduce((n, [, v]) => n + v, 0);
        const totalItems = Object.values(counts).reduce((n, v) => n + v, 0);
        const pct = totalItems === 0 ? 100 : Math.round((100 * done) / totalItems);
        bar.value = pct;
        words.textContent = `${String(r.status)}: ${pct} % (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')})`;
        if (r.status !== 'running') {
          cancel.remove();
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
  return el(
    'section',
    { 'aria-labelledby': 'replay-title' },
    el('h3', { id: 'replay-title' }, 'Replay'),
    el('div', { class: 'cards' }, el('label', { for: 'replay-which' }, 'Replay', which), el('label', { for: 'replay-rate' }, 'Records per second', rate), el('label', { for: 'replay-target' }, 'Target topic (optional)', target), dry),
    out,
  );
}

// ---- audit ----

async function audit(): Promise<void> {
  const tbody = el('tbody');
  let before: string | null = null;
  const load = async () => {
    try {
      const r: { entries: { id: string; at: string; actor: string; action: string; target: string | null; count: number | null; details: unknown }[]; nextCursor: string | null } = await api(
        'GET',
        `/admin/audit?limit=50${before ? `&before=${before}` : ''}`,
      );
      for (const e of r.entries) {
        tbody.append(el('tr', {}, el('td', {}, e.at), el('td', {}, e.actor), el('td', {}, e.action), el('td', {}, e.target ?? ''), el('td', { class: 'num' }, e.count === null ? '' : String(e.count)), el('td', {}, e.details === null ? '' : JSON.stringify(e.details))));
      }
      before = r.nextCursor;
      more.hidden = before === null;
    } catch (err) {
      page().append(failure(err));
    }
  };
  const more = button('Show older', load, true);
  show(
    'Audit log',
    scroller(
      'Audit log entries',
      el('table', { id: 'audit-table' }, el('caption', {}, 'What operators did, newest first'), el('thead', {}, el('tr', {}, ...['When', 'Who', 'What', 'Target', 'How many', 'Details'].map((h) => el('th', { scope: 'col' }, h)))), tbody),
    ),
    more,
  );
  await load();
}

// ---- routing ----

async function route(): Promise<void> {
  window.clearInterval(timer);
  if (!session()) return;
  const name = location.hash.slice(1).split('?')[0];
  if (name === 'dead-letters') await deadLetters();
  else if (name === 'audit') await audit();
  else await overview();
  document.getElementById('main')?.focus();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-in')!.addEventListener('submit', (e) => void onSignIn(e as SubmitEvent));
  document.getElementById('sign-out')!.addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => void route());
  if (session()) signedIn();
  else signOut();
});
