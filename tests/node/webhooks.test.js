// Completion webhooks checked by the real client's library: every delivery
// a real coordinator sends is verified with `standardwebhooks` (the Standard
// Webhooks reference implementation), for a subscription, a job's own URL,
// an OpenAI batch and a background response named through metadata; a
// receiver that fails three times gets the message a fourth time, and no
// more; a tampered body does not verify.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, readFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { Webhook } from 'standardwebhooks';
import { BIN, waitFor, stop } from './helpers.js';

let dir, serve, worker, base, receiver, hookBase;
const got = {};      // path -> [{ headers, body }]
const failFirst = {}; // path -> how many 503s are left

async function api(method, path, body) {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' },
                                       body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  assert.ok(r.status < 400, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-webhooks-'));
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      (got[req.url] ??= []).push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const failing = (failFirst[req.url] ?? 0) > 0;
      if (failing) failFirst[req.url]--;
      res.writeHead(failing ? 503 : 204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookBase = `http://127.0.0.1:${receiver.address().port}`;
  const log = join(dir, 'serve.log');
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir, '--open', '--webhook-allow-private',
                      '--webhook-retry-base', '20ms'], { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  base = `http://127.0.0.1:${port}`;
  const wlog = join(dir, 'worker.log');
  worker = spawn(BIN, ['worker', '--coordinator', base, '--model', 'echo-1', '--concurrency', '4', '--lease-wait', '2s',
                       '--echo-delay', '1ms'], { stdio: ['ignore', openSync(wlog, 'w'), openSync(wlog, 'a')] });
  await waitFor(() => readFileSync(wlog, 'utf8').includes('registered as'), 'the worker to register');
});

after(async () => {
  await stop(worker);
  assert.equal(await stop(serve), 0);
  await new Promise((resolve) => receiver.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const deliveries = (path, n) => waitFor(() => (got[path]?.length ?? 0) >= n && got[path], `${n} deliveries to ${path}`);

test('a subscription and a job\'s own URL: each delivery verifies with standardwebhooks', async () => {
  const sub = await api('POST', '/v1/webhooks', { url: `${hookBase}/all` });
  const jobSecret = (await api('GET', '/v1/webhook-secret')).secret;
  const job = await api('POST', '/v1/jobs', { model: 'echo-1', prompt: 'hello hooks', webhook_url: `${hookBase}/own` });
  const [all] = await deliveries('/all', 1);
  const [own] = await deliveries('/own', 1);
  const fromSub = new Webhook(sub.secret).verify(all.body, all.headers);
  const fromJob = new Webhook(jobSecret).verify(own.body, own.headers);
  for (const event of [fromSub, fromJob]) {
    assert.equal(event.type, 'job.completed');
    assert.equal(event.data.id, job.id);
    assert.equal(event.data.output, 'hello hooks');
  }
  // each secret signs only its own deliveries
  assert.throws(() => new Webhook(jobSecret).verify(all.body, all.headers));
  // a body changed on the way does not verify
  assert.throws(() => new Webhook(sub.secret).verify(all.body.replace('hello', 'HELLO'), all.headers));
  await api('DELETE', `/v1/webhooks/${sub.id}`);
});

test('a receiver that fails three times gets the message once more, and no more', async () => {
  failFirst['/flaky'] = 3;
  const secret = (await api('GET', '/v1/webhook-secret')).secret;
  const job = await api('POST', '/v1/jobs', { model: 'echo-1', prompt: 'again', webhook_url: `${hookBase}/flaky` });
  const four = await deliveries('/flaky', 4);
  const ids = new Set(four.map((d) => d.headers['webhook-id']));
  assert.equal(ids.size, 1, 'one message, the same webhook-id on every attempt');
  for (const d of four) assert.equal(new Webhook(secret).verify(d.body, d.headers).data.id, job.id);
  const delivered = await (async () => {
    for (;;) {
      const [d] = (await api('GET', `/v1/webhook-deliveries?job_id=${job.id}`)).data;
      if (d.status === 'delivered') return d;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  assert.equal(delivered.attempts, 4);
  assert.equal(got['/flaky'].length, 4, 'nothing after the delivery that succeeded');
});

test('an OpenAI batch and a background response name their webhook in metadata', async () => {
  const secret = (await api('GET', '/v1/webhook-secret')).secret;
  const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'open-server', maxRetries: 0 });
  const line = (id) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions',
                                       body: { model: 'echo-1', messages: [{ role: 'user', content: id }] } });
  const file = await openai.files.create({ file: await toFile(Buffer.from([line('a'), line('b')].join('\n')), 'b.jsonl'),
                                           purpose: 'batch' });
  const batch = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
                                              completion_window: '24h', metadata: { webhook_url: `${hookBase}/batch` } });
  const [b] = await deliveries('/batch', 1);
  const event = new Webhook(secret).verify(b.body, b.headers);
  assert.equal(event.type, 'batch.finished');
  assert.equal(batch.id, `batch_${event.data.id}`);
  assert.equal(event.data.status, 'completed');
  const resp = await openai.responses.create({ model: 'echo-1', input: 'in the background', background: true,
                                               store: true, metadata: { webhook_url: `${hookBase}/resp` } });
  const [r] = await deliveries('/resp', 1);
  const done = new Webhook(secret).verify(r.body, r.headers);
  assert.equal(done.type, 'job.completed');
  assert.equal(`resp_${done.data.id}`, resp.id);
});
