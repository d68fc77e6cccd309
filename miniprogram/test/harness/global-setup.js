// Starts the real stack once for the whole run: stack.py (the WeChat API stand-in and
// `server.py --dev`, which runs its own WeChat Pay stand-in) and waits for its URLs.
const { spawn } = require('child_process');
const path = require('path');
const fs = require('fs');

const ROOT = path.resolve(__dirname, '../../..');

module.exports = async function globalSetup() {
  const venv = path.join(ROOT, '.venv/bin/python');
  const python = process.env.PYTHON || (fs.existsSync(venv) ? venv : 'python3');
  const child = spawn(python, [path.join(__dirname, '../stack.py')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('stack.py did not start in 120 s')), 120000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const end = out.indexOf('\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, end));
      }
    });
    child.on('exit', (code) => reject(new Error(`stack.py exited with ${code}`)));
  });
  globalThis.__MP_STACK__ = child;
  process.env.MP_STACK = line;
};
