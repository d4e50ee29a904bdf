// The dashboard and the API's viewers in a real browser: Debian's chromium
// driven by puppeteer-core. A real coordinator on 127.0.0.1 with an admin
// (ada) and a read-only client (rex); this test plays the worker over HTTP, so
// it decides when each token arrives. Screenshots go to a temporary folder,
// or to PROMPTQ_SCREENSHOTS (make screenshots: docs/screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { BIN, waitFor, stop } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
let dir, serve, councilWorker, base, browser, shots, workerKey, workerId, adminKey, readerKey;

const cli = (input, ...args) => execFileSync(BIN, [...args, '--data', dir], { input, encoding: 'utf8' }).trim();

async function call(method, path, key, body) {
  const r = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-dashboard-'));
  shots = process.env.PROMPTQ_SCREENSHOTS ?? join(dir, 'screenshots');
  mkdirSync(shots, { recursive: true });
  cli('ada-password\n', 'user', 'add', 'ada', '--admin');
  cli('rex-password\n', 'user', 'add', 'rex');
  adminKey = cli('', 'key', 'create', '--user', 'ada');
  readerKey = cli('', 'key', 'create', '--user', 'rex');
  workerKey = cli('', 'key', 'create', '--user', 'ada', '--scope', 'worker');
  const log = join(dir, 'serve.log');
  // one admin clicks through every page here in seconds and signs in six times: more than the defaults allow
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir, '--rate-client', '6000', '--burst-client', '500', '--rate-login', '600',
                      '--council-members', 'echo-a,echo-b,echo-c'],
                { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  base = `http://127.0.0.1:${port}`;
  // a real worker seats the council's members (echo-a..c); this test itself serves 'echo'
  const wlog = join(dir, 'worker.log');
  councilWorker = spawn(BIN, ['worker', '--coordinator', base, '--model', 'echo-a,echo-b,echo-c', '--echo-delay', '5ms',
                              '--concurrency', '3', '--api-key', workerKey],
                        { stdio: ['ignore', openSync(wlog, 'w'), openSync(wlog, 'a')] });
  await waitFor(() => readFileSync(wlog, 'utf8').includes('registered as'), 'the council worker to register');
  const w = await call('POST', '/v1/workers', workerKey, { name: 'gpu-box-1', models: ['echo'], capabilities: { max_concurrency: 2 } });
  assert.equal(w.status, 201);
  workerId = w.body.id;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (councilWorker) assert.equal(await stop(councilWorker), 0);
  assert.equal(await stop(serve), 0);
  rmSync(dir, { recursive: true, force: true });
});

/* A page that records every console error, uncaught exception and failed request. */
async function openPage(path) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.problems.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => { if (!r.url().includes('/events')) page.problems.push(`request failed: ${r.url()}`); });
  await page.goto(base + path, { waitUntil: 'load' });
  return page;
}

async function signIn(page, user, password) {
  await page.waitForSelector('#login-form');
  await page.type('#login-form input[name=user]', user);
  await page.type('#login-form input[name=password]', password);
  await page.click('#login-form button');
  await until(page, `${user} signed in`, (u) => document.querySelector('#who')?.textContent.startsWith(u), user);
}

/* page.waitForFunction, saying what it waited for when it gives up (and what the page reported). */
async function until(page, what, fn, ...args) {
  try {
    return await page.waitForFunction(fn, { timeout: 15000 }, ...args);
  } catch (e) {
    const shown = await page.evaluate(() => location.hash + ' | ' + document.querySelector('#view')?.innerText.slice(0, 400));
    throw new Error(`waited for ${what}: ${e.message}; page problems: ${JSON.stringify(page.problems)}; page: ${shown}`);
  }
}

/* The test plays the worker: it leases what is queued (earlier tests leave jobs) and keeps id's lease token. */
async function leaseToken(id) {
  const leased = await call('POST', `/v1/workers/${workerId}/lease`, workerKey, { max_jobs: 10, wait_s: 5 });
  return leased.body.jobs.find((j) => j.id === id).lease.token;
}

const text = (page, sel) => page.$eval(sel, (el) => el.textContent);

test('the dashboard loads, signs in, and shows a job submitted through the API within a second', async () => {
  const page = await openPage('/');
  await signIn(page, 'ada', 'ada-password');
  assert.equal(await text(page, '#who'), 'ada (admin)');
  await until(page, 'the worker on the overview', () => document.querySelector('#workers')?.textContent.includes('gpu-box-1'));
  await page.goto(base + '/#/jobs');
  await page.waitForSelector('#jobs');
  const submitted = await call('POST', '/v1/jobs', adminKey, { model: 'echo', prompt: 'a job to watch' });
  assert.equal(submitted.status, 202);
  const acked = Date.now();
  await page.waitForSelector(`tr[data-job="${submitted.body.id}"]`, { timeout: 1000 }); // the promise
  assert.ok(Date.now() - acked <= 1000);
  assert.match(await page.$eval(`tr[data-job="${submitted.body.id}"]`, (el) => el.textContent), /queued/);
  await page.screenshot({ path: join(shots, 'dashboard-jobs.png') });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("a job's page streams its tokens as they arrive, then checks its receipt's signature", async () => {
  const job = await call('POST', '/v1/jobs', adminKey, { model: 'echo', prompt: 'stream me' });
  const page = await openPage('/');
  await signIn(page, 'ada', 'ada-password');
  await page.goto(`${base}/#/job/${job.body.id}`);
  await page.waitForSelector('#job-output');
  const lease = await leaseToken(job.body.id);
  await call('POST', `/v1/jobs/${job.body.id}/chunks`, workerKey, { lease, chunks: ['Hel', 'lo'] });
  await until(page, 'the first tokens', () => document.querySelector('#job-output')?.textContent === 'Hello');
  await call('POST', `/v1/jobs/${job.body.id}/chunks`, workerKey, { lease, chunks: [', world'] });
  await until(page, 'the next token', () => document.querySelector('#job-output')?.textContent === 'Hello, world');
  const done = await call('POST', `/v1/jobs/${job.body.id}/complete`, workerKey,
                          { lease, output: 'Hello, world', usage: { prompt_tokens: 2, completion_tokens: 3 } });
  assert.equal(done.status, 200);
  await until(page, 'the job completed', () => document.querySelector('#job-status')?.textContent === 'completed');
  await page.waitForSelector('#receipt-verdict');
  assert.match(await text(page, '#receipt-verdict'), /^Signature valid: signed by this coordinator's key/);
  await page.screenshot({ path: join(shots, 'dashboard-job.png'), fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('an admin cancels a job from its page; a read-only user gets no actions and the API refuses them', async () => {
  const mine = await call('POST', '/v1/jobs', adminKey, { model: 'echo', prompt: 'cancel me' });
  const page = await openPage('/');
  await signIn(page, 'ada', 'ada-password');
  await page.goto(`${base}/#/job/${mine.body.id}`);
  await page.waitForSelector('#job-actions button');
  await page.click('#job-actions button.danger');
  await page.waitForSelector('#action-result');
  assert.equal((await call('GET', `/v1/jobs/${mine.body.id}`, adminKey)).body.status, 'cancelled');
  await until(page, 'the job cancelled', () => document.querySelector('#job-status')?.textContent === 'cancelled');
  assert.deepEqual(page.problems, []);
  await page.close();

  const theirs = await call('POST', '/v1/jobs', readerKey, { model: 'echo', prompt: 'look, do not touch' });
  const reader = await openPage('/');
  await signIn(reader, 'rex', 'rex-password');
  assert.equal(await text(reader, '#who'), 'rex (read-only)');
  await reader.goto(`${base}/#/job/${theirs.body.id}`);
  await reader.waitForSelector('#job-actions p');
  assert.equal(await reader.$('#job-actions button'), null);
  assert.match(await text(reader, '#job-actions'), /Read-only/);
  assert.equal(await reader.$eval('a[href="#/keys"]', (a) => a.hidden), true);
  // the page only hides what the API refuses anyway
  assert.equal((await call('POST', `/v1/jobs/${theirs.body.id}/retry`, readerKey)).status, 403);
  await reader.screenshot({ path: join(shots, 'dashboard-read-only.png') });
  assert.deepEqual(reader.problems, []);
  await reader.close();
});

test('an admin retries a failed job and revokes a key from the dashboard; every page renders without an error', async () => {
  const job = await call('POST', '/v1/jobs', adminKey, { model: 'echo', prompt: 'fail me' });
  const lease = await leaseToken(job.body.id);
  const failed = await call('POST', `/v1/jobs/${job.body.id}/fail`, workerKey,
                            { lease, error: { code: 'UPSTREAM_ERROR', message: 'it broke' }, retryable: false });
  assert.equal(failed.body.status, 'failed');
  const doomed = cli('', 'key', 'create', '--user', 'rex', '--name', 'doomed');
  assert.equal((await call('GET', '/v1/jobs', doomed)).status, 200);

  const page = await openPage('/');
  await signIn(page, 'ada', 'ada-password');
  await page.goto(`${base}/#/job/${job.body.id}`);
  await until(page, "the job's error", () => document.querySelector('#job-error')?.textContent.startsWith('UPSTREAM_ERROR'));
  await page.click('#job-actions button');
  await until(page, 'the retried job', (old) => location.hash.startsWith('#/job/') && !location.hash.endsWith(old), job.body.id);
  const retried = decodeURIComponent(await page.evaluate(() => location.hash.slice('#/job/'.length)));
  const again = await call('GET', `/v1/jobs/${retried}`, adminKey);
  assert.equal(again.body.status, 'queued');
  assert.deepEqual(again.body.input, { prompt: 'fail me' });

  await page.goto(`${base}/#/keys`);
  await until(page, 'the doomed key listed', () => [...document.querySelectorAll('#view tr')].some((tr) => tr.textContent.includes('doomed')));
  await page.evaluate(() => [...document.querySelectorAll('#view tr')].find((tr) => tr.textContent.includes('doomed'))
    .querySelector('button').click());
  await until(page, 'the doomed key revoked', () => [...document.querySelectorAll('#view tr')].find((tr) => tr.textContent.includes('doomed'))
    ?.textContent.includes('revoked'));
  assert.equal((await call('GET', '/v1/jobs', doomed)).status, 401);

  for (const [hash, title] of [['#/councils', 'Councils'], ['#/batches', 'Batches'], ['#/spend', 'Spend'], ['#/', 'Overview']]) {
    await page.goto(`${base}/${hash}`);
    await until(page, `the ${title} page`, (t) => document.querySelector('#view h1')?.textContent === t, title);
    await until(page, `the ${title} page loaded`, () => document.querySelector('#view').children.length > 1);
    const error = await page.$eval('#view', (v) => v.querySelector('.error')?.textContent ?? null);
    assert.equal(error, null, `${hash} shows an error`);
  }
  await until(page, 'the throughput chart', () => document.querySelector('#chart canvas'));
  // live: the overview counts the retried job as the one queued, next up
  await until(page, 'the retried job next up', (id) => document.querySelector('#queues a')?.getAttribute('href') === '#/job/' + id,
              retried);
  await page.screenshot({ path: join(shots, 'dashboard-overview.png') });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('a council shows round by round, with its agreement', async () => {
  const asked = await call('POST', '/api/v1/requests', adminKey, { query: 'What is machine learning?' });
  assert.equal(asked.status, 202);
  const id = asked.body.requestId;
  const page = await openPage('/');
  await signIn(page, 'ada', 'ada-password');
  await page.goto(`${base}/#/councils`);
  await until(page, 'the council listed', (rid) => document.querySelector(`a[href="#/councils/${rid}"]`), id);
  await until(page, 'the council completed', async (rid) => {
    const r = await fetch(`/api/v1/requests/${rid}`, { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('pq_token') } });
    return (await r.json()).status === 'completed';
  }, id);
  await page.goto(`${base}/#/councils/${id}`);
  await until(page, 'round 1 with its agreement', () => document.querySelector('h2.round')?.textContent.startsWith('Round 1: agreement 1.00'));
  assert.match(await text(page, '#view table'), /echo-a.*completed/s);
  await page.screenshot({ path: join(shots, 'dashboard-council.png'), fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('Swagger UI and ReDoc render the OpenAPI document, offline, at / and under /api/', async () => {
  const spec = await (await fetch(`${base}/openapi.json`)).json();
  const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  for (const prefix of ['', '/api']) {
    const swagger = await openPage(`${prefix}/docs`);
    await swagger.waitForSelector('.opblock');
    const shown = await swagger.$$eval('.opblock', (els) => els.length);
    assert.equal(shown, operations);
    assert.match(await text(swagger, '.info .title'), /promptq/);
    if (!prefix) await swagger.screenshot({ path: join(shots, 'swagger-ui.png') });
    assert.deepEqual(swagger.problems, []);
    await swagger.close();

    const redoc = await openPage(`${prefix}/redoc`);
    await redoc.waitForFunction(() => document.body.textContent.includes('Submit a job'), { timeout: 20000 });
    if (!prefix) await redoc.screenshot({ path: join(shots, 'redoc.png') });
    assert.deepEqual(redoc.problems, []);
    await redoc.close();
  }
});
