// Document 002's own client examples, run unchanged apart from the base URL
// and the key: the Node.js/TypeScript polling loop (axios; the TypeScript is
// only stripped of its types by the typescript compiler) and the EventSource
// listener (the `eventsource` package provides EventSource to Node, as a
// browser would). A real coordinator with API keys and a real echo worker
// seated as three council members, on 127.0.0.1, in a temporary folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { BIN, waitFor, stop } from './helpers.js';

const HERE = new URL('.', import.meta.url).pathname;
let dir, serve, worker, base, key;

const cli = (...args) => execFileSync(BIN, args, { input: 'dana-password\n', encoding: 'utf8' }).trim();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'promptq-node-council-'));
  cli('user', 'add', 'dana', '--data', dir);
  key = cli('key', 'create', '--user', 'dana', '--data', dir);
  const workerKey = cli('key', 'create', '--user', 'dana', '--scope', 'worker', '--data', dir);
  const log = join(dir, 'serve.log');
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir, '--council-members', 'echo-a,echo-b,echo-c'],
                { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  const port = await waitFor(() => readFileSync(log, 'utf8').match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1],
                             'promptq serve to listen');
  base = `http://127.0.0.1:${port}`;
  const wlog = join(dir, 'worker.log');
  worker = spawn(BIN, ['worker', '--coordinator', base, '--model', 'echo-a,echo-b,echo-c', '--echo-delay', '5ms',
                       '--concurrency', '4', '--api-key', workerKey],
                 { stdio: ['ignore', openSync(wlog, 'w'), openSync(wlog, 'a')] });
  await waitFor(() => readFileSync(wlog, 'utf8').includes('registered as'), 'the worker to register');
});

after(async () => {
  assert.equal(await stop(worker), 0);
  assert.equal(await stop(serve), 0);
  rmSync(dir, { recursive: true, force: true });
});

/* Runs a script next to node_modules (so its imports resolve) and returns its output. */
function runScript(source) {
  const scratch = mkdtempSync(join(HERE, '.snippet-'));
  const file = join(scratch, 'snippet.mjs');
  writeFileSync(file, source);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file], { timeout: 60000 }, (err, stdout, stderr) => {
      rmSync(scratch, { recursive: true, force: true });
      if (err) reject(new Error(`${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

const rebase = (text) => text.replaceAll('http://localhost:3000', base).replaceAll('YOUR_API_KEY', key);

test("the document's Node.js / TypeScript example polls a council to its decision", async () => {
  const typed = readFileSync(join(HERE, 'snippets/002-node.ts'), 'utf8');
  const js = ts.transpileModule(rebase(typed), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const { stdout } = await runScript(js);
  const id = stdout.match(/^Request ID: ([0-9a-f-]{36})$/m)?.[1];
  assert.ok(id, stdout);
  const decision = stdout.match(/^Response: ([\s\S]+)$/m)?.[1];
  assert.ok(decision && decision.includes('What is machine learning?'), stdout); // the echo members' answer
  const r = await fetch(`${base}/api/v1/requests/${id}`, { headers: { Authorization: `Bearer ${key}` } });
  const body = await r.json();
  assert.equal(body.status, 'completed');
  assert.equal(body.confidence, 'high');
});

test("the document's EventSource example hears the chunks and the completion", async () => {
  const r = await fetch(`${base}/api/v1/requests`, {
    method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: 'Explain quantum computing in simple terms' }),
  });
  assert.equal(r.status, 202);
  const { requestId } = await r.json();
  const listener = readFileSync(join(HERE, 'snippets/002-eventsource.js'), 'utf8')
    .replaceAll('550e8400-e29b-41d4-a716-446655440000', requestId);
  const { stdout } = await runScript(`import EventSource from 'eventsource';\n${rebase(listener)}`);
  assert.match(stdout, /^Chunk: /m);
  assert.match(stdout, /^Complete: /m);
  assert.ok(stdout.includes(`requestId: '${requestId}'`) && stdout.includes("status: 'completed'"), stdout);
  const chunks = [...stdout.matchAll(/^Chunk: ([\s\S]*?)(?=^Chunk: |^Complete: )/gm)].map((m) => m[1].slice(0, -1)).join(''); // console.log ends each with one newline
  assert.ok(chunks.includes('Explain quantum computing in simple terms'), chunks);
});
