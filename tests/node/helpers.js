// What the real-client tests share: the binary, polling for a condition
// observed from outside a process (never a fixed sleep), and stopping a
// child process by its pid.
export const BIN = process.env.PROMPTQ_BIN ?? new URL('../../build/promptq', import.meta.url).pathname;

export function waitFor(predicate, what, ms = 30000) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const value = predicate();
      if (value) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}
