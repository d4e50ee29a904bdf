// Stripe webhooks signed by the official `stripe` library (its test-header
// helper: the real client's scheme, not ours), against a real coordinator:
// good and bad signatures, key rotation, a stale timestamp, an event delivered
// twice at once (credited once), and subscription events out of order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import { BIN, waitFor } from './helpers.js';

const SECRET = 'whsec_test_0123456789abcdef';
const stripe = new Stripe('sk_test_unused');
let dir, serve, base, key, admin, userId;

const cli = (...args) => execFileSync(BIN, args, { input: 'long-enough-password\n', encoding: 'utf8' }).trim();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-stripe-'));
  cli('user', 'add', 'payer', '--data', dir);
  cli('user', 'add', 'boss', '--admin', '--data', dir);
  key = cli('key', 'create', '--user', 'payer', '--data', dir);
  admin = cli('key', 'create', '--user', 'boss', '--scope', 'admin', '--data', dir);
  const log = join(dir, 'serve.log');
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir],
                { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')],
                  env: { ...process.env, STRIPE_WEBHOOK_SECRET: SECRET, STRIPE_SECRET_KEY: 'sk_test_unused' } });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  base = `http://127.0.0.1:${port}`;
  userId = (await credits()).user_id;
});

after(async () => {
  await new Promise((resolve) => { serve.once('exit', resolve); serve.kill('SIGTERM'); });
  const log = readFileSync(join(dir, 'serve.log'), 'utf8');
  assert.ok(!log.includes(SECRET), 'the webhook secret never reaches the log');
  rmSync(dir, { recursive: true, force: true });
});

async function credits() {
  const r = await fetch(`${base}/v1/credits`, { headers: { Authorization: `Bearer ${key}` } });
  return r.json();
}

function event(id, type, object, created = Math.floor(Date.now() / 1000)) {
  return JSON.stringify({ id, object: 'event', type, created, data: { object } });
}

async function deliver(payload, header) {
  const signature = header ?? stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
  return fetch(`${base}/api/webhook/stripe`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signature }, body: payload,
  });
}

test('a paid micro-payment credits its user once, even delivered twice at the same moment', async () => {
  const before = (await credits()).balance.micros;
  const payload = event('evt_micro_1', 'checkout.session.completed', {
    id: 'cs_1', object: 'checkout.session', mode: 'payment', payment_status: 'paid', amount_total: 250,
    client_reference_id: userId, metadata: { user_id: userId, promptq: '1' }, currency: 'usd',
  });
  const answers = await Promise.all([deliver(payload), deliver(payload), deliver(payload)]);
  for (const r of answers) {
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'success' });
  }
  assert.equal((await credits()).balance.micros, before + 2500000); // 2.50 USD of credit, once
  const again = await deliver(payload); // Stripe's retry, later
  assert.equal(again.status, 200);
  assert.equal((await credits()).balance.micros, before + 2500000);
});

test('bad signatures are refused with 400, and nothing is credited', async () => {
  const before = (await credits()).balance.micros;
  const payload = event('evt_bad', 'checkout.session.completed', {
    mode: 'payment', payment_status: 'paid', amount_total: 100000, client_reference_id: userId,
    metadata: { promptq: '1' }, currency: 'usd', id: 'cs_bad',
  });
  const good = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
  const cases = [
    ['a tampered body', deliver(payload.replace('100000', '900000'), good)],
    ['another secret', deliver(payload, stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_other' }))],
    ['a stale timestamp', deliver(payload, stripe.webhooks.generateTestHeaderString({
      payload, secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 301 }))],
    ['no header', fetch(`${base}/api/webhook/stripe`, { method: 'POST', body: payload,
                                                         headers: { 'Content-Type': 'application/json' } })],
    ['garbage', deliver(payload, 't=abc,v1=zz')],
  ];
  for (const [what, pending] of cases) {
    const r = await pending;
    assert.equal(r.status, 400, what);
    assert.match((await r.json()).error, /signature/i, what);
  }
  assert.equal((await credits()).balance.micros, before);
});

test('several v1 signatures (a secret being rotated): one that matches is enough', async () => {
  const before = (await credits()).balance.micros;
  const payload = event('evt_rotated', 'checkout.session.completed', {
    mode: 'payment', payment_status: 'paid', amount_total: 100, client_reference_id: userId,
    metadata: { promptq: '1' }, currency: 'usd', id: 'cs_rotated',
  });
  const good = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
  const old = stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_previous' });
  const header = `${good},v1=${old.split('v1=')[1]}`; // t=..,v1=<new>,v1=<old>
  const swapped = `t=${good.split(',')[0].slice(2)},v1=${old.split('v1=')[1]},v1=${good.split('v1=')[1]}`;
  assert.equal((await deliver(payload, header)).status, 200);
  assert.equal((await deliver(payload, swapped)).status, 200); // the same event: applied once
  assert.equal((await credits()).balance.micros, before + 1000000);
});

test('a subscription: its invoices credit each period, its events keep its state in any order', async () => {
  const before = (await credits()).balance.micros;
  const t = Math.floor(Date.now() / 1000);
  const invoice = (id, created) => event(id, 'invoice.paid', {
    id: `in_${id}`, object: 'invoice', subscription: 'sub_42', customer: 'cus_9', amount_paid: 1000, currency: 'usd',
    subscription_details: { metadata: { user_id: userId, promptq: '1' } },
  }, created);
  // the first invoice can arrive before the checkout that says whose it is: its metadata does
  assert.equal((await deliver(invoice('evt_inv_1', t))).status, 200);
  assert.equal((await deliver(event('evt_checkout_sub', 'checkout.session.completed', {
    mode: 'subscription', payment_status: 'paid', amount_total: 1000, subscription: 'sub_42', customer: 'cus_9',
    client_reference_id: userId, metadata: { promptq: '1' }, id: 'cs_sub',
  }, t))).status, 200);
  assert.equal((await credits()).balance.micros, before + 10000000); // one period, not two
  const sub = (status, created) => event(`evt_sub_${status}_${created}`, `customer.subscription.${
    status === 'canceled' ? 'deleted' : 'updated'}`, {
    id: 'sub_42', object: 'subscription', status, customer: 'cus_9', current_period_end: t + 2592000,
    metadata: { user_id: userId, promptq: '1' },
  }, created);
  assert.equal((await deliver(sub('active', t + 10))).status, 200);
  assert.equal((await deliver(sub('past_due', t + 5))).status, 200); // older: it does not win
  const stats = async () => (await (await fetch(`${base}/api/stats`, {
    headers: { Authorization: `Bearer ${admin}` } })).json()).users.subscriptions;
  assert.equal(await stats(), 1);
  assert.equal((await deliver(invoice('evt_inv_2', t + 20))).status, 200); // the next period
  assert.equal((await credits()).balance.micros, before + 20000000);
  assert.equal((await deliver(sub('canceled', t + 30))).status, 200);
  assert.equal(await stats(), 0);
  // the books: income from both kinds of payment
  const report = await (await fetch(`${base}/api/report/daily`, {
    headers: { Authorization: `Bearer ${admin}` } })).json();
  assert.equal(report.breakdown.income_breakdown.subscription, 20);
  assert.ok(report.breakdown.income_breakdown.micro_payment >= 3.5);
  assert.equal(report.income, report.breakdown.income_breakdown.subscription +
                              report.breakdown.income_breakdown.micro_payment);
});

test('an invoice nobody can place yet is left for Stripe to deliver again; other events are acknowledged', async () => {
  const r = await deliver(event('evt_orphan', 'invoice.paid', {
    id: 'in_x', subscription: 'sub_unknown', amount_paid: 500, currency: 'usd',
    subscription_details: { metadata: { promptq: '1' } } }));
  assert.equal(r.status, 503); // ours, not placed yet: not recorded, the next delivery may know its customer
  const foreign = await deliver(event('evt_foreign', 'invoice.paid', {
    id: 'in_y', subscription: 'sub_other_integration', amount_paid: 500, currency: 'usd' }));
  assert.equal(foreign.status, 200); // another integration's: acknowledged, not applied, never retried for ever
  const ignored = await deliver(event('evt_other', 'payment_intent.created', { id: 'pi_1' }));
  assert.equal(ignored.status, 200);
  assert.deepEqual(await ignored.json(), { status: 'success' });
});

test('another currency, a session not ours, and a delayed payment method', async () => {
  const before = (await credits()).balance.micros;
  const session = (id, extra) => ({ id, object: 'checkout.session', mode: 'payment', amount_total: 1600000,
                                    client_reference_id: userId, metadata: { promptq: '1' }, ...extra });
  // about a dollar in rupiah is not sixteen thousand dollars of credit
  assert.equal((await deliver(event('evt_idr', 'checkout.session.completed',
    session('cs_idr', { payment_status: 'paid', currency: 'idr' })))).status, 200);
  // a Payment Link's session, not one of ours
  assert.equal((await deliver(event('evt_link', 'checkout.session.completed',
    session('cs_link', { payment_status: 'paid', currency: 'usd', metadata: {} })))).status, 200);
  assert.equal((await credits()).balance.micros, before);
  // a bank debit: completed unpaid, then succeeded (and re-sent): credited once
  const debit = session('cs_debit', { currency: 'usd', amount_total: 300 });
  assert.equal((await deliver(event('evt_debit_1', 'checkout.session.completed',
    { ...debit, payment_status: 'unpaid' }))).status, 200);
  assert.equal((await credits()).balance.micros, before);
  assert.equal((await deliver(event('evt_debit_2', 'checkout.session.async_payment_succeeded',
    { ...debit, payment_status: 'paid' }))).status, 200);
  assert.equal((await deliver(event('evt_debit_3', 'checkout.session.async_payment_succeeded',
    { ...debit, payment_status: 'paid' }))).status, 200); // another event about the same payment
  assert.equal((await credits()).balance.micros, before + 3000000);
});
