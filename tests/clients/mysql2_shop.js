#!/usr/bin/env node
'use strict';
// mysql2 (promise API) against MySQL/MariaDB, over TCP or a unix socket.
//
//   node mysql2_shop.js ACTION (--host H --port P | --socket PATH) --user U --db D
//
// The database holds a table t (id int primary key, note text).
//
//   harmless        --repeat times: SELECT count(*) FROM t, INSERT one row
//                   with placeholders (ids from 100001), UPDATE one row by its key
//   drop-database   DROP DATABASE <db>
//   delete-all      DELETE FROM t
//   delete-where    DELETE FROM t WHERE id > ? with 0 (the driver fills it in:
//                   every row)
//   execute-where   the same as a prepared statement (execute: the server
//                   gets the statement, then the value in COM_STMT_EXECUTE)
//   execute-backslash  execute of DELETE FROM t WHERE note <> ? with 'a\\b'
//                   (a value with a backslash: every row)
//
// After an error, SELECT 1 on the same connection says whether it is still
// usable. Output and exit status: clientlib.js.
const lib = require('./clientlib');

async function main() {
  const a = lib.parse([
    'harmless',
    'drop-database',
    'delete-all',
    'delete-where',
    'execute-where',
    'execute-backslash',
  ], {
    port: '3306',
    user: 'root',
    db: 'shop',
  });
  const mysql = lib.pkg('mysql2/promise');
  const elapsed = lib.timer();
  let conn;
  try {
    conn = await mysql.createConnection(
      a.socket
        ? { socketPath: a.socket, user: a.user, password: a.password, database: a.db }
        : { host: a.host, port: a.port, user: a.user, password: a.password, database: a.db },
    );
  } catch (e) {
    return lib.clientError(e);
  }
  // A fatal error with no command waiting is an 'error' event: reported, not
  // a crash of the script.
  conn.connection.on('error', (e) => console.log(`error event: ${e.message}`));
  const failed = await lib.attempt(
    async () => {
      if (a.action === 'drop-database') return conn.query(`DROP DATABASE \`${a.db}\``);
      if (a.action === 'delete-all') return conn.query('DELETE FROM t');
      if (a.action === 'delete-where') return conn.query('DELETE FROM t WHERE id > ?', [0]);
      if (a.action === 'execute-where') return conn.execute('DELETE FROM t WHERE id > ?', [0]);
      if (a.action === 'execute-backslash') {
        return conn.execute('DELETE FROM t WHERE note <> ?', ['a\\b']);
      }
      for (let i = 0; i < a.repeat; i++) {
        await conn.query('SELECT count(*) FROM t');
        await conn.query('INSERT INTO t (id, note) VALUES (?, ?)', [100001 + i, `harmless ${i}`]);
        await conn.query('UPDATE t SET note = ? WHERE id = ?', [`seen ${i}`, 1 + (i % 100)]);
      }
    },
    () => conn.query('SELECT 1'),
  );
  if (failed !== null) return failed;
  const ms = elapsed();
  await conn.end();
  return lib.done(ms);
}

lib.run(main);
