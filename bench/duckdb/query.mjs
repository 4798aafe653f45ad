// One SQL statement through DuckDB, its result as JSON on stdout: the columns with DuckDB's
// types, and the rows (internal/duckdbtest runs it: Driftline's outputs as DuckDB reads them).
import { DuckDBInstance } from '@duckdb/node-api';

const db = await DuckDBInstance.create(':memory:', { threads: '1' });
const c = await db.connect();
const r = await c.runAndReadAll(process.argv[2]);
const columns = r.columnNames().map((name, i) => ({ name, type: r.columnTypes()[i].toString() }));
console.log(JSON.stringify({ columns, rows: r.getRowsJson() }));
