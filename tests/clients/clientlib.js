'use strict';
// What the Node.js scenario scripts share; the same conventions as
// clientlib.py (connection parameters, output lines, exit status 3 when the
// client reported an error). The npm packages come from the folder that
// install_clients.sh fills: KS_CLIENTS_NODE_MODULES, default
// /var/cache/killswitch-tests/clients/node_modules.
const path = require('path');
const { parseArgs } = require('util');

const FAILED = 3;
const NODE_MODULES =
  process.env.KS_CLIENTS_NODE_MODULES || '/var/cache/killswitch-tests/clients/node_modules';

// require() of an installed package by name.
function pkg(name) {
  return require(path.join(NODE_MODULES, name));
}

function parse(actions, defaults = {}) {
  const env = process.env;
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: env.KS_DB_HOST || '127.0.0.1' },
      port: { type: 'string', default: env.KS_DB_PORT || defaults.port || '0' },
      socket: { type: 'string', default: env.KS_DB_SOCKET || '' },
      user: { type: 'string', default: env.KS_DB_USER || defaults.user || '' },
      password: { type: 'string', default: env.KS_DB_PASSWORD || '' },
      db: { type: 'string', default: env.KS_DB_NAME || defaults.db || '' },
      repeat: { type: 'string', default: env.KS_DB_REPEAT || '100' },
    },
  });
  const action = positionals[0];
  if (!actions.includes(action)) {
    console.error(`usage: ${path.basename(process.argv[1])} ${actions.join('|')} [options]`);
    process.exit(2);
  }
  return { ...values, action, port: Number(values.port), repeat: Number(values.repeat) };
}

function oneLine(text) {
  return String(text).split(/\s+/).filter(Boolean).join(' ');
}

// Prints what the client reported (an Error, or text such as a program's
// stderr) as "client error:" lines; returns the exit status to use.
function clientError(errOrText, prefix) {
  let lines;
  if (errOrText instanceof Error) {
    const e = errOrText;
    const code = e.code ? ` [${e.code}]` : '';
    lines = [`${e.name}${code}: ${oneLine(e.message)}`];
    const inner = e.original || e.parent || e.cause;
    if (inner && inner.message && !lines[0].includes(oneLine(inner.message)))
      lines.push(`${inner.name || 'Error'}: ${oneLine(inner.message)}`);
  } else {
    // eslint-disable-next-line no-control-regex
    const plain = String(errOrText).replace(/\x1b\[[0-9;]*m/g, '');
    // Lines the killswitch daemon wrote to a client program's stderr itself
    // (its notice to a refused process) are not the client's: passed through.
    lines = [];
    for (const l of plain.split('\n')) {
      if (l.startsWith('killswitch: ')) console.error(l);
      else if (l.trim()) lines.push(l.trim());
    }
    if (lines.length === 0) lines = ['(no text)'];
  }
  for (const l of lines) console.error(`client error: ${prefix ? prefix + ': ' : ''}${l}`);
  return FAILED;
}

// A harmless request on the connection that reported an error; no answer
// within 5 s counts as unusable.
async function afterRefusal(probe) {
  let timeout;
  const late = new Promise((resolve, reject) => {
    timeout = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
  });
  try {
    await Promise.race([probe(), late]);
    console.log('after refusal: usable');
  } catch (e) {
    console.log(`after refusal: unusable: ${e.name}: ${oneLine(e.message)}`);
  } finally {
    clearTimeout(timeout);
  }
}

// Runs work(); when the client reports an error, prints it, tries probe() on
// the same connection and returns the exit status to use; null when it went
// through.
async function attempt(work, probe) {
  try {
    await work();
    return null;
  } catch (e) {
    const status = clientError(e);
    await afterRefusal(probe);
    return status;
  }
}

function timer() {
  const t0 = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - t0) / 1e6;
}

function done(ms) {
  console.log(`op_ms ${ms.toFixed(1)}`);
  return 0;
}

// Runs main() and exits with its status once stdout and stderr are written.
function run(main) {
  main().then(
    (status) => {
      // Whatever a client library left open (a reconnect timer) does not
      // keep the script alive; writes to pipes are synchronous on Linux.
      process.exit(status);
    },
    (e) => {
      // Not reported by the client library as the answer to a call: the
      // script itself failed.
      console.error(e && e.stack ? e.stack : String(e));
      process.exit(1);
    },
  );
}

module.exports = {
  FAILED,
  NODE_MODULES,
  pkg,
  parse,
  clientError,
  afterRefusal,
  attempt,
  timer,
  done,
  run,
};
