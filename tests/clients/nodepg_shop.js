#!/usr/bin/env node
'use strict';
// node-postgres (pg, pure JavaScript) against PostgreSQL: one thing.
//
//   node nodepg_shop.js ACTION --host H --port P --user U --db D
//
// The database holds a table t (id int primary key, note text).
//
//   harmless             --repeat times: SELECT count(*) FROM t, INSERT one row
//                        with parameters (ids from 100001), UPDATE one row by
//                        its key with parameters
//   delete-where         DELETE FROM t WHERE id > $1 with 0 (the extended
//                        protocol: Parse, then Bind with the value): every row
//   drop-with-listener   DROP TABLE t, with client.on('error', ...) set
//   drop-no-listener     DROP TABLE t, without an 'error' listener: an error
//                        event on the client (the connection lost) crashes
//                        the process, as in most scripts
//
// After an error, SELECT count(*) FROM t on the same client says whether it is
// still usable. Output and exit status: clientlib.js.
const lib = require('./clientlib');

async function main() {
  const a = lib.parse(['harmless', 'delete-where', 'drop-with-listener', 'drop-no-listener'], {
    port: '5432',
    user: 'postgres',
    db: 'shop',
  });
  const { Client } = lib.pkg('pg');
  const elapsed = lib.timer();
  const client = new Client({
    host: a.socket ? a.socket.replace(/\/[^/]*$/, '') : a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: a.db,
  });
  if (a.action === 'drop-with-listener')
    client.on('error', (e) => console.log(`error event: ${e.message}`));
  try {
    await client.connect();
  } catch (e) {
    return lib.clientError(e);
  }
  const failed = await lib.attempt(
    async () => {
      if (a.action === 'delete-where') return client.query('DELETE FROM t WHERE id > $1', [0]);
      if (a.action !== 'harmless') return client.query('DROP TABLE t');
      for (let i = 0; i < a.repeat; i++) {
        await client.query('SELECT count(*) FROM t');
        await client.query('INSERT INTO t (id, note) VALUES ($1, $2)', [100001 + i, `harmless ${i}`]);
        await client.query('UPDATE t SET note = $1 WHERE id = $2', [`seen ${i}`, 1 + (i % 100)]);
      }
    },
    () => client.query('SELECT count(*) FROM t'),
  );
  if (failed !== null) return failed;
  const ms = elapsed();
  await client.end();
  return lib.done(ms);
}

lib.run(main);
