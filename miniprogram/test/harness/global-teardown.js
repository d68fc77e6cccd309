// Stops the stack: closing stack.py's stdin makes it stop the server (SIGTERM) and the stand-ins.
module.exports = async function globalTeardown() {
  const child = globalThis.__MP_STACK__;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
  await exited;
  clearTimeout(timer);
};
