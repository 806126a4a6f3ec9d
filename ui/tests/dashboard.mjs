// Browser tests of the dashboard against a running `weft serve` with the
// scripted model. Run by host/server/tests/dashboard.rs (`cargo xtask
// test`), which starts the host and passes:
//   WEFT_URL          the host, e.g. http://127.0.0.1:PORT
//   WEFT_ADMIN_KEY    an admin key without a project
//   WEFT_CHROMIUM     the Chromium to drive (headless)
//   WEFT_SCREENSHOTS  the folder for screenshots
//   WEFT_PLUGIN_FILE  the `output` plugin's component (a variant is uploaded)
//   WEFT_OIDC_ISSUER  the test's OIDC provider, which signs people in at once
//                     as an operator of the project `default`
// Every step waits for what the page shows; the timeouts only bound a hang.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (host/server/tests/dashboard.rs sets it)`);
  return value;
};
const BASE = need('WEFT_URL');
const ADMIN = need('WEFT_ADMIN_KEY');
const SHOTS = need('WEFT_SCREENSHOTS');
const PLUGIN = need('WEFT_PLUGIN_FILE');
const ISSUER = need('WEFT_OIDC_ISSUER');
const QUESTION = 'How many devices does customer 1042 have?';
const BOUND = 60_000;

mkdirSync(SHOTS, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const problems = [];

function step(text) {
  console.log(`- ${text}`);
}

/** axe-core on the page as it stands: no serious or critical violation. */
async function accessible(page, view) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) throw new Error(`${view}: accessibility violations:\n${JSON.stringify(bad, null, 2)}`);
}

/** The page fits its width: only tables scroll sideways, inside their box. */
async function fits(page, view) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  if (scroll > width + 1) throw new Error(`${view}: the page is ${scroll}px wide in a ${width}px window`);
}

async function check(page, view) {
  await accessible(page, view);
  await fits(page, view);
  await page.screenshot({ path: join(SHOTS, `${view}.png`), fullPage: true });
}

async function open(browser, viewport) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(BOUND);
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { context, page };
}

async function signIn(page, key, role) {
  await page.goto(BASE + '/');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('who').filter({ hasText: role }).waitFor();
}

async function nav(page, label) {
  await page.getByRole('navigation', { name: 'views' }).getByRole('link', { name: label, exact: true }).click();
}

/** A copy of a component with a custom section appended: a new version. */
function variant(bytes, n) {
  const name = Buffer.from('weft-test-variant');
  const leb = (v) => {
    const out = [];
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    return Buffer.from(out);
  };
  const payload = Buffer.from([n, 0, 0, 0]);
  const section = Buffer.concat([leb(name.length), name, payload]);
  return Buffer.concat([bytes, Buffer.from([0]), leb(section.length), section]);
}

const browser = await chromium.launch({
  executablePath: process.env.WEFT_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
try {
  const { context, page } = await open(browser, { width: 1280, height: 800 });

  step('an admin signs in; the overview shows the host');
  await signIn(page, ADMIN, 'admin');
  await page.getByTestId('host-status').filter({ hasText: 'running' }).waitFor();
  await check(page, 'overview');

  step('a question in the chat gets a streamed reply and progress lines');
  let deltas = 0;
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      if (typeof f.payload === 'string' && f.payload.includes('"type":"delta"')) deltas += 1;
    });
  });
  await nav(page, 'Chat');
  await page.getByText('Connected').waitFor();
  await page.getByLabel('Message').fill(QUESTION);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('li.weft', { hasText: '3 metering devices' }).waitFor();
  await page.locator('li.progress').first().waitFor();
  await page.getByRole('button', { name: 'Cancel' }).waitFor({ state: 'detached' });
  if (deltas === 0) throw new Error('the reply arrived without any streamed delta');
  const replies = await page.locator('li.weft').allTextContents();
  if (replies.length !== 1) throw new Error(`one question, ${replies.length} reply lines: ${JSON.stringify(replies)}`);
  const thread = (await page.getByTestId('chat-thread').textContent()).trim();
  await check(page, 'chat');

  step(`the run's thread ${thread} is in the list`);
  await nav(page, 'Threads');
  const link = page.getByTestId('thread-link').filter({ hasText: thread });
  await link.waitFor();
  await check(page, 'threads');

  step('its timeline, and an invocation with its host calls');
  await link.click();
  await page.getByTestId('timeline').waitFor();
  await page.getByTestId('thread-status').filter({ hasText: 'completed' }).waitFor();
  await check(page, 'timeline');
  await page.getByTestId('invocation').filter({ hasText: 'calls' }).first().click();
  const calls = page.getByTestId('host-calls');
  await calls.waitFor();
  await calls.locator('summary').first().click();
  await calls.getByRole('heading', { name: 'Response' }).first().waitFor();
  await check(page, 'invocation');

  step('a budget is raised');
  await page.getByTestId('raise-amount').fill('5000');
  await page.getByTestId('raise-budget').click();
  await page.getByText(/Budget now \d+ tokens/).waitFor();
  await page.getByTestId('budget').waitFor();

  step('the thread replays exactly from its journal');
  await page.getByTestId('replay-recorded').click();
  await page.getByText(/^Reproduced: \d+ frames, \d+ invocations/).waitFor();

  step('the thread is forked after its first frame');
  await page.getByTestId('fork').first().click();
  await page.getByText('Forked from').waitFor();
  await page.getByRole('heading', { name: /^Thread / }).filter({ hasNotText: thread }).waitFor();
  await check(page, 'fork');

  step('a node is paused and resumed; an agent instance is paused');
  const spawned = await fetch(`${BASE}/api/v1/projects/default/agents`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'helper', plugin: 'ui' }),
  });
  if (spawned.status !== 201) throw new Error(`spawning an agent instance: ${spawned.status} ${await spawned.text()}`);
  await nav(page, 'Agents');
  const instance = page.locator('tr', { hasText: 'helper' });
  await instance.getByRole('button', { name: 'Pause' }).click();
  await instance.getByRole('cell', { name: 'paused', exact: true }).waitFor();
  const row = page.locator('tr[data-agent="memorizer"]');
  await row.getByTestId('pause').click();
  await row.getByTestId('agent-state').filter({ hasText: 'paused' }).waitFor();
  await check(page, 'agents');
  await row.getByTestId('resume').click();
  await row.getByTestId('agent-state').filter({ hasNotText: 'paused' }).waitFor();

  step('a new version of a plugin is uploaded and listed');
  await nav(page, 'Plugins');
  const plugin = page.locator('tr[data-plugin="output"]');
  const before = await plugin.getByTestId('plugin-hash').getAttribute('title');
  const file = join(tmpdir(), `weft-dashboard-output-${process.pid}.wasm`);
  writeFileSync(file, variant(readFileSync(PLUGIN), 7));
  await plugin.getByTestId('plugin-file').setInputFiles(file);
  await plugin.getByTestId('plugin-upload').click();
  await plugin.getByText(/^Now /).waitFor();
  rmSync(file); // the browser reads it when the upload is sent
  await page.waitForFunction(
    (old) => document.querySelector('tr[data-plugin="output"] [data-testid="plugin-hash"]')?.getAttribute('title') !== old,
    before,
  );
  await check(page, 'plugins');

  step("the graph, and its versions with the upload's change");
  await nav(page, 'Graph');
  await page.locator('svg.graph').waitFor();
  const newest = page.getByTestId('graph-version').first();
  await newest.getByTestId('version-changes').filter({ hasText: 'new plugin build on output' }).waitFor();
  if ((await page.getByTestId('graph-version').count()) < 2) throw new Error('the upload made no new graph version');
  await newest.getByRole('button').click();
  await page.getByTestId('version-diff').getByText('The file did not change').waitFor();
  await check(page, 'graph');
  await nav(page, 'Events');
  await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
  await check(page, 'events');
  await nav(page, 'Usage');
  await page.getByRole('heading', { name: 'Thread budgets' }).waitFor();
  await page.getByText('Loading…').first().waitFor({ state: 'detached' });
  step('usage over time is charted');
  await page.getByTestId('usage-chart').waitFor();
  await page.getByTestId('series-key').filter({ hasText: /^default: [\d,]+ tokens$/ }).waitFor();
  await page.getByTestId('series-by').selectOption('node');
  await page.getByTestId('series-key').filter({ hasText: /^input: / }).waitFor();
  step("a project's money budget is set and raised");
  await page.getByTestId('project-budget').filter({ hasText: /^default: no limit/ }).waitFor();
  await page.getByTestId('project-limit').fill('25');
  await page.getByTestId('project-window').selectOption('monthly');
  await page.getByTestId('set-project-limit').click();
  await page.getByText(/^Limit set: default: limit 25 per UTC month/).waitFor();
  await page.getByTestId('project-raise').fill('5');
  await page.getByTestId('raise-project').click();
  await page.getByText(/^Raised: default: limit 30 per UTC month/).waitFor();
  await page.getByTestId('project-budget').filter({ hasText: /^default: limit 30 per UTC month/ }).waitFor();
  await check(page, 'usage');

  step('an admin creates a viewer key');
  await nav(page, 'Keys');
  await page.getByTestId('key-name').fill('dashboard viewer');
  await page.getByTestId('key-role').selectOption('viewer');
  await page.getByTestId('create-key').click();
  const viewerKey = (await page.getByTestId('key-secret').textContent()).trim();
  await check(page, 'keys');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  await context.close();

  step('a viewer sees every view without a mutating control');
  const viewer = await open(browser, { width: 1280, height: 800 });
  await signIn(viewer.page, viewerKey, 'viewer');
  const views = [
    ['Overview', () => viewer.page.getByTestId('host-status').waitFor()],
    ['Threads', () => viewer.page.getByTestId('thread-link').first().waitFor()],
    ['Chat', () => viewer.page.getByText('needs an operator key').waitFor()],
    ['Graph', () => viewer.page.locator('svg.graph').waitFor()],
    ['Events', () => viewer.page.getByRole('status').filter({ hasText: 'live' }).waitFor()],
    ['Usage', () => viewer.page.getByRole('heading', { name: 'Thread budgets' }).waitFor()],
    ['Plugins', () => viewer.page.locator('tr[data-plugin="output"]').waitFor()],
    ['Agents', () => viewer.page.locator('tr[data-agent="memorizer"]').waitFor()],
  ];
  if (await viewer.page.getByRole('link', { name: 'Keys', exact: true }).count()) {
    throw new Error('a viewer is offered the keys view');
  }
  for (const [label, ready] of views) {
    await nav(viewer.page, label);
    await ready();
    await viewer.page.getByText('Loading…').first().waitFor({ state: 'detached' });
    const mutating = await viewer.page.locator('[data-mutates]').count();
    if (mutating) throw new Error(`a viewer is offered ${mutating} mutating controls in ${label}`);
    await check(viewer.page, `viewer-${label.toLowerCase()}`);
  }
  await viewer.page.getByTestId('thread-link').first().waitFor({ state: 'detached' }).catch(() => {});
  await nav(viewer.page, 'Threads');
  await viewer.page.getByTestId('thread-link').filter({ hasText: thread }).click();
  await viewer.page.getByTestId('timeline').waitFor();
  const onThread = await viewer.page.locator('[data-mutates]').count();
  if (onThread) throw new Error(`a viewer is offered ${onThread} mutating controls on a thread`);
  await check(viewer.page, 'viewer-thread');
  await viewer.context.close();

  step('at phone width');
  const phone = await open(browser, { width: 390, height: 844 });
  await signIn(phone.page, ADMIN, 'admin');
  await phone.page.getByTestId('host-status').waitFor();
  await check(phone.page, 'phone-overview');
  await nav(phone.page, 'Threads');
  await phone.page.getByTestId('thread-link').filter({ hasText: thread }).click();
  await phone.page.getByTestId('timeline').waitFor();
  await check(phone.page, 'phone-timeline');
  await nav(phone.page, 'Chat');
  await phone.page.getByText('Connected').waitFor();
  await check(phone.page, 'phone-chat');
  await phone.context.close();

  step('a person signs in with the OIDC provider (authorization code with PKCE)');
  const person = await open(browser, { width: 1280, height: 800 });
  await person.page.goto(BASE + '/');
  const provider = person.page.getByTestId('oidc-sign-in');
  await provider.filter({ hasText: new URL(ISSUER).host }).waitFor();
  await provider.click();
  await person.page.getByTestId('who').filter({ hasText: 'operator · default' }).waitFor();
  if (new URL(person.page.url()).search) throw new Error(`the code stayed in the address: ${person.page.url()}`);
  await nav(person.page, 'Threads');
  await person.page.getByTestId('thread-link').filter({ hasText: thread }).waitFor();
  await check(person.page, 'oidc-threads');
  await person.context.close();

  if (problems.length) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
  console.log('all dashboard checks passed');
} finally {
  await browser.close();
}
