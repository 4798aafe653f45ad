// The DuckDB peer of the feature store's point-in-time join (bench/duckdb.sh): the rows
// featuresbench wrote (-peer-data DIR, features.parquet and entities.parquet) loaded into
// tables (not timed, as pandas' loading is not), then each entity row joined to the latest
// feature row of its key at or before its time with ASOF LEFT JOIN, within the same 30-day
// lookback. Like pandas' merge_asof it filters by event time only, so it does less than
// features.AsOf, which also requires created time <= T. Prints seconds and matched rows.
// The keys are the rows' own, strings ("k123", as features.AsOf gets them); with "int" as
// the second argument, their integer ids instead (what DuckDB would do with integer keys).
import { DuckDBInstance } from '@duckdb/node-api';

const dir = process.argv[2];
const db = await DuckDBInstance.create(':memory:', { threads: String(process.env.DUCKDB_THREADS || 2) });
const c = await db.connect();
const version = (await c.runAndReadAll('SELECT version()')).getRows()[0][0];
const keys = process.argv[3] === 'int' ? 'int' : 'string';
const key = keys === 'int' ? 'key' : `'k' || key::VARCHAR AS key`;
await c.run(`CREATE TABLE f AS SELECT ${key}, event, created, value FROM read_parquet('${dir}/features.parquet')`);
await c.run(`CREATE TABLE e AS SELECT ${key}, "at" FROM read_parquet('${dir}/entities.parquet')`);
const lookback = 30n * 24n * 3600n * 1000000n;
const t0 = process.hrtime.bigint();
const r = await c.runAndReadAll(`
  SELECT count(*) AS rows, count(CASE WHEN e.at - f.event < ${lookback} THEN f.value END) AS matched
  FROM e ASOF LEFT JOIN f ON e.key = f.key AND e.at >= f.event`);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const [rows, matched] = r.getRows()[0];
const nf = (await c.runAndReadAll('SELECT count(*) FROM f')).getRows()[0][0];
console.log(`duckdb ${version} ASOF JOIN (${keys} keys): ${nf} feature rows x ${rows} entity rows: ${secs.toFixed(2)} s, ` +
  `${(Number(rows) / secs / 1e6).toFixed(2)}M entity rows/s, ${matched} matched (event time only); ` +
  `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
