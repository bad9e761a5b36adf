import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, eventually, startPipeline, testKafka, type JsonBody as Json, type Pipeline } from '@sluice/testing';
import { chromium, type Browser, type Page } from 'playwright-core';

// The operator console (issue 17) in a real browser: Debian's Chromium, driven by playwright-core,
// on a whole pipeline. The operator signs in, sees dead letters appear, reads one, fixes their cause,
// replays them with a dry run first, and finds it all in the audit log; values from records are
// shown, never run; every page passes axe-core without a serious or critical violation.
jest.setTimeout(300_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(__dirname, '..', '.sluice', 'console-screenshots');
const MIN = 60_000;
const T = Math.floor(Date.now() / MIN) * MIN - 30 * MIN;
const OPERATOR = 'e2e-operator';
const XSS_KEY = '<script>window.__xss = "key"</script>';
const XSS_VALUE = '<img src=x onerror="window.__xss = \'value\'">';

let p: Pipeline;
let browser: Browser;
let page: Page;
const entity = `console-${Date.now().toString(36)}`;
const category = 'console-cat';

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});

afterAll(async () => {
  await browser?.close();
  await p?.close();
});

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core in the page (evaluated through the DevTools protocol: the page's CSP rightly refuses inline scripts): no serious or critical violation. */
async function accessible(): Promise<void> {
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const violations = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe;
    const result = await axe.run();
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  })) as { id: string; impact: string }[];
  expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
}

test('the console is served with a strict CSP, and a wrong token is refused in words', async () => {
  const res = await page.goto(`${p.replayer.url}/console/`);
  expect(res?.status()).toBe(200);
  const csp = res?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-inline');
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByLabel('Your name (recorded in the audit log)').fill(OPERATOR);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong token: the service refused it.').waitFor();
  await accessible();
  await shot('sign-in');
});

test('dead letters appear in the overview and the table; a record is read in full; markup in a record is shown, never run', async () => {
  // Events of an entity with no catalog entry become dead letters (catalog.missing) ...
  const events = Array.from({ length: 5 }, (_, i) => ({ eventId: `${entity}-${i}`, entityId: entity, type: 'view', value: i + 1, occurredAt: new Date(T + i * 1000).toISOString() }));
  expect((await p.http(p.gateway, 'POST', '/v1/events', { events })).status).toBe(202);
  // ... and so do bytes that are no record, with markup in their key and value.
  const producer = testKafka('console-xss').producer();
  await producer.connect();
  await producer.send({ topic: p.topic('events.raw'), messages: [{ key: XSS_KEY, value: Buffer.from(XSS_VALUE) }] });
  await producer.disconnect();

  // Signed in by keyboard alone.
  await page.getByLabel('Admin token').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(ADMIN_TOKEN);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(OPERATOR);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  // The overview refreshes on its own until the six dead letters are counted as pending.
  await page.locator('[data-status="pending"] strong', { hasText: /^6$/ }).waitFor({ timeout: 90_000 });
  await expect(page.getByRole('table', { name: 'Dead letters by topic, stage and error code' }).getByRole('cell', { name: 'catalog.missing' }).count()).resolves.toBe(1);
  // The lag is read from Kafka every 2 s here, the page refreshes every 5 s.
  await page.getByRole('table', { name: /Consumer lag/ }).getByRole('cell', { name: p.groups.enricher, exact: true }).first().waitFor({ timeout: 30_000 });
  await accessible();
  await shot('overview');

  // To the dead letters by keyboard too.
  await page.getByRole('link', { name: 'Dead letters' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Dead letters' }).waitFor();
  await page.locator('#dead-letter-table tbody tr').nth(5).waitFor();
  // The markup is in the table as text.
  await page.getByRole('cell', { name: XSS_KEY, exact: true }).waitFor();
  const xssRow = page.locator('#dead-letter-table tbody tr', { hasText: XSS_KEY });
  await xssRow.getByRole('button').click();
  await page.getByRole('heading', { name: /^Dead letter / }).waitFor();
  await expect(page.locator('#raw').textContent()).resolves.toBe(Buffer.from(XSS_VALUE).toString('base64'));
  await expect(page.locator('.detail').getByRole('cell', { name: XSS_KEY, exact: true }).count()).resolves.toBe(1);
  expect(await page.evaluate(() => (globalThis as unknown as { __xss?: string }).__xss)).toBeUndefined();
  await expect(page.locator('.detail img, .detail script').count()).resolves.toBe(0);
  await accessible();
  // Not an event at all: discarded, with a reason.
  await page.getByLabel('Reason').fill('not an event: bytes written by a test');
  await page.getByRole('button', { name: 'Discard' }).click();
  await page.getByText('Discarded.').waitFor();

  // Searched by a header's value.
  await page.getByLabel('header (name=value)').fill('dlq.error.code=serde.bad_magic_byte');
  await page.getByRole('button', { name: 'Apply' }).click();
  await eventually('one row', () => page.locator('#dead-letter-table tbody tr').count(), (n) => n === 1, 30_000);
  await page.locator('#dead-letter-table tbody tr', { hasText: XSS_KEY }).waitFor();
  await page.getByLabel('header (name=value)').fill('');

  // Filtered to the entity's dead letters, one opened: its payload decoded.
  await page.getByLabel('code').fill('catalog.missing');
  await page.getByLabel('key', { exact: true }).fill(entity);
  await page.getByRole('button', { name: 'Apply' }).click();
  await eventually('five rows', () => page.locator('#dead-letter-table tbody tr').count(), (n) => n === 5, 30_000);
  await page.locator('#dead-letter-table tbody tr').first().getByRole('button').click();
  await page.locator('#decoded').waitFor();
  expect(JSON.parse((await page.locator('#decoded').textContent()) ?? '{}')).toMatchObject({ eventId: `${entity}-0`, entityId: entity });
  await shot('dead-letters');

  // Exported with payloads: what the API lists, with headers and values.
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const listed = (await p.http(p.replayer, 'GET', `/admin/dlq?code=catalog.missing&key=${entity}`, undefined, auth)).body.deadLetters as Json[];
  expect(listed).toHaveLength(5);
  await page.getByLabel('Include payloads').check();
  const [jsonl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON Lines' }).click()]);
  const lines = readFileSync((await jsonl.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Json);
  expect(lines.map(({ headers: _h, valueBase64: _v, ...rest }) => rest)).toEqual(listed);
  for (const line of lines) {
    const one = (await p.http(p.replayer, 'GET', `/admin/dlq/${line.id}`, undefined, auth)).body;
    expect([line.valueBase64, line.headers]).toEqual([one.valueBase64, one.headers]);
  }
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  const rows = readFileSync((await csv.path())!, 'utf8').trim().split('\r\n');
  expect(rows[0]).toBe('id,sourceTopic,sourcePartition,sourceOffset,key,keyBase64,errorCode,errorMessage,stage,failedAt,status,replayCount,headers,valueBase64');
  expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(listed.map((d) => d.id));
});

test('the catalog fixed: a replay already running is a conflict said in words; cancelled, a dry run then the console replay reach 100 % and correct the windows; the audit log lists it all', async () => {
  expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${entity}`, { name: 'Fixed', category, price: 5 })).status).toBe(200);
  await eventually(
    "the enricher's catalog holds the fix",
    async () => Number(/^enricher_catalog_entries(?:\{[^}]*\})? (\d+)/m.exec(await fetch(`${p.enricher.url}/metrics`).then((r) => r.text()))?.[1] ?? 0),
    (n) => n >= 1,
  );
  await page.locator('#replay-which').selectOption('filter');
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'another-operator' };
  // Another operator's replay of the same records, slow (one a second), is running: the console's is refused, in words.
  const other = await p.http(p.replayer, 'POST', '/admin/dlq/replays', { filter: { code: 'catalog.missing', key: entity, status: 'pending' }, ratePerSec: 1 }, auth);
  expect(other.status).toBe(202);
  await page.getByRole('button', { name: 'Dry run' }).click();
  await page.getByText(/^Dry run: [1-5] would be replayed, 0 skipped/).waitFor();
  await page.getByRole('button', { name: 'Start the replay' }).click();
  await page.getByText(/already being replayed by a replay that is still running/).waitFor();
  await shot('replay-conflict');
  // That replay cancelled (what it had produced stays replayed), the console replays the rest and follows it to 100 %.
  expect((await p.http(p.replayer, 'POST', `/admin/dlq/replays/${other.body.replayId}/cancel`, undefined, auth)).status).toBe(200);
  await eventually('the other replay stops', async () => (await p.http(p.replayer, 'GET', `/admin/dlq/replays/${other.body.replayId}`, undefined, auth)).body, (r: Json) => r.status === 'cancelled' && !r.counts.producing);
  // (How many it replayed is not asked: a record it had picked up just before the cancel may still be finishing.)
  await page.getByLabel('Records per second').fill('100');
  await page.getByRole('button', { name: 'Dry run' }).click();
  await page.getByText(/^Dry run: [0-4] would be replayed/).waitFor();
  await page.getByRole('button', { name: 'Start the replay' }).click();
  await page.getByText(/^completed: 100 %/).waitFor({ timeout: 60_000 });
  await expect(page.locator('#replay-progress').getAttribute('value')).resolves.toBe('100');
  await shot('replay-done');
  const started = ((await p.http(p.replayer, 'GET', '/admin/audit?limit=50', undefined, auth)).body.entries as Json[]).find((e) => e.action === 'replay.start' && e.actor === OPERATOR);
  expect(started).toBeDefined();
  const windows = await eventually(
    'the view counts the five events',
    async () => (await p.http(p.view, 'GET', `/v1/aggregates?dimension=entity&key=${entity}&from=${new Date(T - MIN).toISOString()}&to=${new Date(T + 2 * MIN).toISOString()}`)).body.windows ?? [],
    (w: Json[]) => w.reduce((n, x) => n + Number(x.count), 0) === 5,
  );
  expect(windows.reduce((n: number, x: Json) => n + Number(x.sum), 0)).toBe(15);

  // The dead letter's history names the replay.
  await page.locator('#dead-letter-table tbody tr').first().getByRole('button').click();
  await page.getByRole('table', { name: 'Replays of this dead letter' }).getByRole('cell', { name: 'replayed', exact: true }).first().waitFor();

  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.locator('#audit-table tbody tr').first().waitFor();
  for (const action of ['dead-letter.discard', 'replay.dry-run', 'replay.start', 'dead-letters.export']) await expect(page.locator('#audit-table tbody tr', { hasText: action }).first().textContent()).resolves.toContain(OPERATOR);
  await accessible();
  await shot('audit');

  // A narrow window: the pages still read (nothing wider than the window but the scrollable tables).
  await page.setViewportSize({ width: 420, height: 800 });
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  expect(
    await page.evaluate(() => {
      const g = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
      return g.document.documentElement.scrollWidth <= g.innerWidth + 1;
    }),
  ).toBe(true);
  await shot('overview-narrow');
});
