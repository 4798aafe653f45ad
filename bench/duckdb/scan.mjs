// The DuckDB peer of the one pass (bench/duckdb.sh): the SQL scanbench -sql wrote (the demo
// contract's checks on every column of the window's local Parquet files, approximate distinct
// counts, the unique key's duplicates within a date) run on the files as they are, timed
// together. Prints seconds, rows, rows that break the contract, duplicates.
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const queries = readFileSync(process.argv[2], 'utf8').split(';').map((q) => q.trim()).filter(Boolean);
const db = await DuckDBInstance.create(':memory:', { threads: String(process.env.DUCKDB_THREADS || 2) });
const c = await db.connect();
const version = (await c.runAndReadAll('SELECT version()')).getRows()[0][0];
const t0 = process.hrtime.bigint();
const first = await c.runAndReadAll(queries[0]);
const second = await c.runAndReadAll(queries[1]);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const names = first.columnNames();
const row = first.getRows()[0];
const get = (n) => row[names.indexOf(n)];
console.log(`duckdb ${version} read_parquet with the contract's checks: ${get('rows')} rows (${get('bad_rows')} breaking the contract, ` +
  `${second.getRows()[0][0]} duplicate keys) in ${secs.toFixed(2)} s; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
console.log(`DUCKDB_SECONDS=${secs.toFixed(3)}`);
