#!/usr/bin/env node
'use strict';
// knex's command line against PostgreSQL: `knex migrate:latest` or
// `knex migrate:rollback --all`.
//
//   node knex_shop.js ACTION --host H --port P --user U --db D
//
// A knexfile.js (client pg) and two migrations are made in a temporary folder
// at each run, always the same: 20240101000000_products.js creates table
// products, 20240102000000_orders.js creates table orders (a foreign key to
// products); their down() drops them. knex keeps its bookkeeping in
// knex_migrations and takes its lock with
//   update "knex_migrations_lock" set "is_locked" = $1
// (every row of a one-row table).
//
//   migrate-latest        knex --knexfile F migrate:latest
//   migrate-rollback-all  knex --knexfile F migrate:rollback --all
//
// The command line runs as a child process (node_modules/knex/bin/cli.js);
// when it fails, what it printed (the reason on stdout, the stack on stderr)
// is the client's error. Output and exit status:
// clientlib.js.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const lib = require('./clientlib');

const PRODUCTS = `exports.up = (knex) =>
  knex.schema.createTable('products', (t) => {
    t.increments('id');
    t.string('name').notNullable();
    t.integer('qty').notNullable().defaultTo(0);
  });
exports.down = (knex) => knex.schema.dropTable('products');
`;

const ORDERS = `exports.up = (knex) =>
  knex.schema.createTable('orders', (t) => {
    t.increments('id');
    t.integer('product_id').notNullable().references('id').inTable('products');
    t.integer('quantity').notNullable();
  });
exports.down = (knex) => knex.schema.dropTable('orders');
`;

async function main() {
  const a = lib.parse(['migrate-latest', 'migrate-rollback-all'], {
    port: '5432',
    user: 'postgres',
    db: 'shop',
  });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-knex-'));
  try {
    fs.mkdirSync(path.join(root, 'migrations'));
    fs.writeFileSync(path.join(root, 'migrations', '20240101000000_products.js'), PRODUCTS);
    fs.writeFileSync(path.join(root, 'migrations', '20240102000000_orders.js'), ORDERS);
    const connection = {
      host: a.host,
      port: a.port,
      user: a.user,
      password: a.password,
      database: a.db,
    };
    fs.writeFileSync(
      path.join(root, 'knexfile.js'),
      `module.exports = ${JSON.stringify({ client: 'pg', connection, migrations: { directory: path.join(root, 'migrations') } })};\n`,
    );
    const cli = path.join(lib.NODE_MODULES, 'knex', 'bin', 'cli.js');
    const args =
      a.action === 'migrate-latest' ? ['migrate:latest'] : ['migrate:rollback', '--all'];
    const elapsed = lib.timer();
    const r = spawnSync(process.execPath, [cli, '--knexfile', path.join(root, 'knexfile.js'), ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: lib.NODE_MODULES, NO_COLOR: '1' },
    });
    const ms = elapsed();
    // knex prints why a migration failed on stdout, the stack on stderr.
    if (r.status !== 0)
      return lib.clientError(
        (r.stdout || '') + (r.stderr || '') || `knex exited ${r.status ?? r.signal}`,
        'knex',
      );
    process.stdout.write(r.stdout || '');
    return lib.done(ms);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

lib.run(main);
