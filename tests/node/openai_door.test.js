// The OpenAI door as agents, structured-output code and batch jobs use it: the
// official openai library and LangChain's @langchain/openai, unchanged, against
// a real coordinator (API keys) and a real `promptq worker --backend openai` in
// front of a scripted OpenAI-compatible upstream (tests/api/fake_upstream.py,
// model `smart`: tool calls, JSON from a schema, `length`), plus an echo worker.
// Everything on 127.0.0.1 with free ports, in a temporary folder, stopped by pid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, openSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { ChatOpenAI } from '@langchain/openai';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { BIN, waitFor, stop } from './helpers.js';

const UPSTREAM = new URL('../api/fake_upstream.py', import.meta.url).pathname;
let dir, upstream, upstreamUrl, keys = {}, servers = [], workers = [];

/* Polls an async condition (the SDK's own calls) until it holds. */
async function poll(predicate, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cli = (...args) => execFileSync(BIN, args, { input: 'pw-for-tests\n', encoding: 'utf8' }).trim();

async function startServer(data, ...extra) {
  const log = join(data, `serve-${servers.length}.log`);
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', data, '--rate-client', '0', ...extra],
                     { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  const server = { proc, url: `http://127.0.0.1:${port}`, data };
  servers.push(server);
  return server;
}

async function startWorker(server, models, ...extra) {
  const log = join(server.data, `worker-${workers.length}.log`);
  const proc = spawn(BIN, ['worker', '--coordinator', server.url, '--model', models, '--concurrency', '4',
                           '--lease-wait', '2s', '--api-key', keys.worker, ...extra],
                     { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  workers.push(proc);
  await waitFor(() => readFileSync(log, 'utf8').includes('registered as'), 'the worker to register');
  return proc;
}

let server;
const client = (who = 'bob', url = server.url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: keys[who], maxRetries: 0 });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-door-'));
  cli('user', 'add', 'bob', '--data', dir);
  cli('user', 'add', 'carol', '--data', dir);
  keys.bob = cli('key', 'create', '--user', 'bob', '--data', dir);
  keys.carol = cli('key', 'create', '--user', 'carol', '--data', dir);
  keys.worker = cli('key', 'create', '--user', 'bob', '--scope', 'worker', '--data', dir);
  upstream = spawn('python3', [UPSTREAM], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  upstream.stdout.on('data', (b) => { said += b; });
  const port = await waitFor(() => said.match(/listening on (\d+)/)?.[1], 'the scripted upstream');
  upstreamUrl = `http://127.0.0.1:${port}`;
  server = await startServer(dir, '--lease-timeout', '2s');
  await startWorker(server, 'smart,broken', '--backend', 'openai', '--base-url', `${upstreamUrl}/v1`);
  await startWorker(server, 'echo-1', '--echo-delay', '2ms');
});

after(async () => {
  const running = (p) => p.exitCode === null && p.signalCode === null;
  for (const w of workers) if (running(w)) assert.equal(await stop(w), 0);
  for (const s of servers) if (running(s.proc)) assert.equal(await stop(s.proc), 0);
  upstream.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'the weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

test('a tool-calling round trip with chat.completions', async () => {
  const openai = client();
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await openai.chat.completions.create({ model: 'smart', messages, tools: [weatherTool], tool_choice: 'auto' });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21C' });
  const second = await openai.chat.completions.create({ model: 'smart', messages, tools: [weatherTool] });
  assert.equal(second.choices[0].message.content, 'The tool said: sunny, 21C');
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('tool calls streamed as deltas, put together by the SDK', async () => {
  const stream = client().chat.completions.stream({
    model: 'smart', messages: [{ role: 'user', content: 'weather?' }], tools: [weatherTool],
  });
  let fragments = 0;
  for await (const chunk of stream) if (chunk.choices[0]?.delta?.tool_calls) fragments++;
  const done = await stream.finalChatCompletion();
  assert.ok(fragments >= 1);
  assert.equal(done.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(done.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
});

test('chat.completions.parse with a JSON schema, and length from the upstream', async () => {
  const Weather = z.object({ city: z.string(), temp: z.number() });
  const parsed = await client().chat.completions.parse({
    model: 'smart', messages: [{ role: 'user', content: 'weather as JSON' }],
    response_format: zodResponseFormat(Weather, 'weather'),
  });
  assert.deepEqual(parsed.choices[0].message.parsed, { city: 'Paris', temp: 21.5 });
  const cut = await client().chat.completions.create({ model: 'smart', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(cut.choices[0].finish_reason, 'length');
});

test('the legacy completions', async () => {
  const c = await client().completions.create({ model: 'smart', prompt: 'Say hi', max_tokens: 20 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices[0].text, 'Hello from upstream');
  let text = '';
  for await (const chunk of await client().completions.create({ model: 'smart', prompt: 'Say hi', stream: true }))
    text += chunk.choices[0]?.text ?? '';
  assert.equal(text, 'Hello from upstream');
});

test('responses.create: plain, streamed, background and chained', async () => {
  const openai = client();
  const plain = await openai.responses.create({ model: 'echo-1', input: 'hello responses', instructions: 'be brief' });
  assert.equal(plain.status, 'completed');
  assert.equal(plain.output_text, 'hello responses');
  const events = [];
  const stream = await openai.responses.create({ model: 'echo-1', input: 'streamed words here', stream: true });
  for await (const event of stream) events.push(event);
  assert.equal(events[0].type, 'response.created');
  assert.equal(events.at(-1).type, 'response.completed');
  assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''),
               'streamed words here');
  const bg = await openai.responses.create({ model: 'echo-1', input: 'in the background', background: true });
  assert.ok(['queued', 'in_progress', 'completed'].includes(bg.status));
  const finished = await poll(async () => {
    const r = await openai.responses.retrieve(bg.id);
    return r.status === 'completed' ? r : null;
  }, 'the background response');
  assert.equal(finished.output_text, 'in the background');
  const first = await openai.responses.create({ model: 'smart', input: 'My name is Ada.' });
  const second = await openai.responses.create({ model: 'smart', input: 'And mine?', previous_response_id: first.id });
  assert.equal(second.previous_response_id, first.id);
  const items = await openai.responses.inputItems.list(second.id);
  assert.equal(items.data.length, 1);
  await assert.rejects(client('carol').responses.retrieve(first.id), (err) => err instanceof OpenAI.NotFoundError);
  await openai.responses.delete(first.id);
  await assert.rejects(openai.responses.retrieve(first.id), (err) => err instanceof OpenAI.NotFoundError);
});

async function runBatch(openai, lines) {
  const file = await openai.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'batch.jsonl'), purpose: 'batch' });
  const batch = await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  return { file, batch };
}

const batchLine = (id, content) => JSON.stringify({
  custom_id: id, method: 'POST', url: '/v1/chat/completions',
  body: { model: 'echo-1', messages: [{ role: 'user', content }] },
});

async function untilDone(openai, id) {
  return poll(async () => {
    const b = await openai.batches.retrieve(id);
    return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status) ? b : null;
  }, 'the batch to finish', 60000);
}

test('files.create, batches.create, polling and files.content', async () => {
  const openai = client();
  const { file, batch } = await runBatch(openai, [batchLine('one', 'first request'), batchLine('two', 'second request')]);
  assert.equal(file.purpose, 'batch');
  const done = await untilDone(openai, batch.id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
  const text = await (await openai.files.content(done.output_file_id)).text();
  const out = text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => o.custom_id).sort(), ['one', 'two']);
  assert.equal(out.find((o) => o.custom_id === 'two').response.body.choices[0].message.content, 'second request');
  const listed = [];
  for await (const b of openai.batches.list()) listed.push(b.id);
  assert.ok(listed.includes(batch.id));
});

test('a batch with a coordinator restart in the middle', async () => {
  const data = join(dir, 'restart');
  mkdirSync(data);
  cli('user', 'add', 'dave', '--data', data);
  keys.dave = cli('key', 'create', '--user', 'dave', '--data', data);
  const saved = keys.worker;
  keys.worker = cli('key', 'create', '--user', 'dave', '--scope', 'worker', '--data', data);
  let s = await startServer(data, '--lease-timeout', '1s');
  const w = await startWorker(s, 'echo-1', '--echo-delay', '100ms', '--concurrency', '1');
  const openai = client('dave', s.url);
  const { batch } = await runBatch(openai, Array.from({ length: 8 }, (_, i) => batchLine(`r${i}`, `request number ${i}`)));
  await poll(async () => (await openai.batches.retrieve(batch.id)).request_counts.completed >= 1, 'some progress');
  for (const p of [s.proc, w]) { // mid-batch, the coordinator and its worker die
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
  }
  s = await startServer(data, '--lease-timeout', '1s');
  await startWorker(s, 'echo-1');
  keys.worker = saved;
  const again = client('dave', s.url);
  const done = await untilDone(again, batch.id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 8, completed: 8, failed: 0 });
  const out = (await (await again.files.content(done.output_file_id)).text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => o.custom_id).sort(), Array.from({ length: 8 }, (_, i) => `r${i}`).sort());
});

test('every error class the SDK knows', async () => {
  const openai = client();
  await assert.rejects(openai.chat.completions.create({ model: 'smart', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'high' }),
                       (err) => err instanceof OpenAI.BadRequestError && err.param === 'reasoning_effort' && err.code === 'unknown_parameter');
  await assert.rejects(openai.chat.completions.create({ model: 'echo-1', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool] }),
                       (err) => err instanceof OpenAI.BadRequestError && err.param === 'tools' && err.code === 'unsupported_parameter');
  await assert.rejects(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'pq_live_wrong', maxRetries: 0 }).models.list(),
                       (err) => err instanceof OpenAI.AuthenticationError && err.status === 401);
  await assert.rejects(client('worker').chat.completions.create({ model: 'echo-1', messages: [{ role: 'user', content: 'x' }] }),
                       (err) => err instanceof OpenAI.PermissionDeniedError && err.status === 403);
  await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
                       (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found');
  await assert.rejects(openai.batches.retrieve('batch_nope'), (err) => err instanceof OpenAI.NotFoundError);
  await assert.rejects(openai.images.generate({ prompt: 'a cat' }), (err) => err instanceof OpenAI.NotFoundError && err.code === 'unknown_url');
  await assert.rejects(openai.completions.create({ model: 'smart', prompt: 'x', suffix: 'y' }),
                       (err) => err instanceof OpenAI.BadRequestError && err.param === 'suffix');
  await assert.rejects(openai.chat.completions.create({ model: 'broken', messages: [{ role: 'user', content: 'x' }] }),
                       (err) => err instanceof OpenAI.InternalServerError && err.status === 500);
  // a key past its rate limit
  const data = join(dir, 'limited');
  mkdirSync(data);
  cli('user', 'add', 'eve', '--data', data);
  const eve = cli('key', 'create', '--user', 'eve', '--data', data);
  const limited = await startServer(data, '--rate-client', '1');
  const slow = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: eve, maxRetries: 0 });
  await slow.models.list();
  await assert.rejects(slow.models.list(), (err) => err instanceof OpenAI.RateLimitError && err.status === 429);
});

test("LangChain's bindTools and withStructuredOutput", async () => {
  const model = new ChatOpenAI({ model: 'smart', apiKey: keys.bob, configuration: { baseURL: `${server.url}/v1` },
                                 maxRetries: 0 });
  const getWeather = tool(async ({ city }) => `sunny in ${city}`, {
    name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string() }),
  });
  const withTools = model.bindTools([getWeather]);
  const ai = await withTools.invoke('What is the weather in Paris?');
  assert.equal(ai.tool_calls.length, 1);
  assert.equal(ai.tool_calls[0].name, 'get_weather');
  assert.deepEqual(ai.tool_calls[0].args, { city: 'Paris' });
  const streamed = await withTools.stream('What is the weather in Paris?');
  let merged;
  for await (const chunk of streamed) merged = merged ? merged.concat(chunk) : chunk;
  assert.deepEqual(merged.tool_calls[0].args, { city: 'Paris' });
  const structured = model.withStructuredOutput(z.object({ city: z.string(), temp: z.number() }), { name: 'weather' });
  assert.deepEqual(await structured.invoke('the weather as JSON'), { city: 'Paris', temp: 21.5 });
});
