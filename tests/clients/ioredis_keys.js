#!/usr/bin/env node
'use strict';
// ioredis against Redis, over TCP or a unix socket, with ioredis's default
// options (reconnect and resend included): one thing.
//
//   node ioredis_keys.js ACTION (--host H --port P | --socket PATH)
//
//   harmless      --repeat times: SET harmless:<i>, then GET it
//   flushall      FLUSHALL
//   del-pipeline  every key matching key:* (SCAN), one DEL each, all in one
//                 pipeline (redis.pipeline(): no MULTI)
//   del-batches   every key matching key:* (SCAN), DEL of 100 keys at a time,
//                 one command after another
//
// After an error, PING on the same client says whether it is still usable.
// Output and exit status: clientlib.js.
const lib = require('./clientlib');

async function allKeys(redis) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', 'key:*', 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

async function work(redis, a) {
  if (a.action === 'harmless') {
    for (let i = 0; i < a.repeat; i++) {
      await redis.set(`harmless:${i}`, `v${i}`);
      await redis.get(`harmless:${i}`);
    }
    return;
  }
  if (a.action === 'flushall') return redis.flushall();
  const keys = await allKeys(redis);
  console.log(`keys ${keys.length}`);
  if (a.action === 'del-pipeline') {
    const pipe = redis.pipeline();
    for (const k of keys) pipe.del(k);
    const results = await pipe.exec();
    const errors = results.filter(([err]) => err).map(([err]) => err);
    console.log(`deleted ${results.reduce((n, [err, res]) => n + (err ? 0 : res), 0)}`);
    if (errors.length) {
      console.log(`refused ${errors.length}`);
      throw errors[0];
    }
    return;
  }
  let deleted = 0;
  try {
    for (let i = 0; i < keys.length; i += 100) deleted += await redis.del(...keys.slice(i, i + 100));
  } finally {
    console.log(`deleted ${deleted}`);
  }
}

async function main() {
  const a = lib.parse(['harmless', 'flushall', 'del-pipeline', 'del-batches'], { port: '6379' });
  const Redis = lib.pkg('ioredis');
  const elapsed = lib.timer();
  const opts = a.password ? { password: a.password } : {};
  const redis = a.socket
    ? new Redis({ ...opts, path: a.socket })
    : new Redis({ ...opts, host: a.host, port: a.port });
  // Connection errors are retried by ioredis; each one is an 'error' event.
  redis.on('error', (e) => console.log(`error event: ${e.message}`));
  const failed = await lib.attempt(
    () => work(redis, a),
    () => redis.ping(),
  );
  const ms = elapsed();
  redis.disconnect();
  return failed ?? lib.done(ms);
}

lib.run(main);
