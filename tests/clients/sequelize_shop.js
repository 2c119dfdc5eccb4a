#!/usr/bin/env node
'use strict';
// Sequelize (dialect postgres, with pg and pg-hstore) against PostgreSQL.
//
//   node sequelize_shop.js ACTION --host H --port P --user U --db D
//
// Two models: Product (table "Products") and Order (table "Orders",
// belongsTo Product).
//
//   sync        sequelize.sync()               creates what is missing
//   sync-force  sequelize.sync({force: true})  drops the tables, creates them
//
// Output and exit status: clientlib.js.
const lib = require('./clientlib');

async function main() {
  const a = lib.parse(['sync', 'sync-force'], { port: '5432', user: 'postgres', db: 'shop' });
  const { Sequelize, DataTypes } = lib.pkg('sequelize');
  const elapsed = lib.timer();
  const sequelize = new Sequelize(a.db, a.user, a.password, {
    host: a.host,
    port: a.port,
    dialect: 'postgres',
    logging: false,
  });
  const Product = sequelize.define('Product', {
    name: { type: DataTypes.STRING, allowNull: false },
    qty: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
  });
  const Order = sequelize.define('Order', {
    quantity: { type: DataTypes.INTEGER, allowNull: false },
  });
  Order.belongsTo(Product);
  try {
    await sequelize.sync(a.action === 'sync-force' ? { force: true } : {});
  } catch (e) {
    const status = lib.clientError(e);
    await sequelize.close().catch(() => {});
    return status;
  }
  const ms = elapsed();
  await sequelize.close();
  return lib.done(ms);
}

lib.run(main);
