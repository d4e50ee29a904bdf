// The official openai library, used as a real user would, against promptq's
// OpenAI-compatible front door: a real coordinator and a real echo worker,
// on 127.0.0.1 with free ports, in a temporary folder, stopped by pid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { BIN, waitFor, stop } from './helpers.js';

let dir, serve, worker, client;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-'));
  const log = join(dir, 'serve.log');
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir, '--open'],
                { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  const url = `http://127.0.0.1:${port}`;
  const wlog = join(dir, 'worker.log');
  worker = spawn(BIN, ['worker', '--coordinator', url, '--model', 'echo-1,echo-2', '--echo-delay', '20ms',
                       '--concurrency', '2'], { stdio: ['ignore', openSync(wlog, 'w'), openSync(wlog, 'a')] });
  await waitFor(() => readFileSync(wlog, 'utf8').includes('registered as'), 'the worker to register');
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-checked-yet', maxRetries: 0 });
});

after(async () => {
  assert.equal(await stop(worker), 0);
  assert.equal(await stop(serve), 0);
  rmSync(dir, { recursive: true, force: true });
});

test('models.list shows what live workers serve', async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids.sort(), ['echo-1', 'echo-2']);
  const one = await client.models.retrieve('echo-2');
  assert.equal(one.object, 'model');
  assert.equal(one.owned_by, 'promptq');
});

test('chat.completions.create without streaming', async () => {
  const completion = await client.chat.completions.create({
    model: 'echo-1',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello from the SDK' }],
    max_tokens: 32,
    temperature: 0.2,
  });
  assert.equal(completion.object, 'chat.completion');
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.model, 'echo-1');
  assert.equal(completion.choices.length, 1);
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.equal(completion.choices[0].message.content, 'Hello from the SDK');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.completion_tokens, 4);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + 4);
});

test('chat.completions.create with streaming and usage', async () => {
  const words = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
  const stream = await client.chat.completions.create({
    model: 'echo-2',
    messages: [{ role: 'user', content: words }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const deltas = [];
  let role = null, finish = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length === 0) { usage = chunk.usage; continue; }
    const choice = chunk.choices[0];
    if (choice.delta.role) role = choice.delta.role;
    if (choice.delta.content) deltas.push(choice.delta.content);
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(deltas.join(''), words);
  assert.ok(deltas.length >= 2, `the answer arrived in ${deltas.length} piece(s)`);
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 20);
});

test('embeddings.create', async () => {
  const result = await client.embeddings.create({ model: 'echo-1', input: ['one text', 'another'] });
  assert.equal(result.object, 'list');
  assert.equal(result.data.length, 2);
  assert.equal(result.data[1].index, 1);
  assert.equal(result.data[0].embedding.length, 8); // the echo backend's deterministic vectors
  const again = await client.embeddings.create({ model: 'echo-1', input: 'one text' });
  assert.deepEqual(again.data[0].embedding, result.data[0].embedding);
});

test('the SDK sees promptq errors as OpenAI errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404 && err.code === 'model_not_found');
  await assert.rejects(
    client.chat.completions.create({ model: 'echo-1', messages: [] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'messages');
});
