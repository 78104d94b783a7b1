// Facts about @ziro-agent/checkpoint-postgres 0.3.21 that pgcheckpoint's interop relies on or works
// around, checked with the real package and pg against the server in $PGCHECKPOINT_TEST_DSN:
//   node --test interop/ziro.test.mjs
// integration/interop_test.go runs this file and drives the package against Go through ziro.mjs.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresCheckpointer, ensureCheckpointsSchema, uuidv7 } from '@ziro-agent/checkpoint-postgres';

const dsn = process.env.PGCHECKPOINT_TEST_DSN;
if (!dsn) throw new Error('PGCHECKPOINT_TEST_DSN is not set');
const pool = new pg.Pool({ connectionString: dsn, max: 2 });
const schema = `pgct_node_${randomBytes(6).toString('hex')}`;
const table = `"${schema}".ziro_checkpoints`;
const snap = (extra = {}) => ({ version: 2, __ziro_snapshot__: true, ...extra });

before(async () => {
  await ensureCheckpointsSchema(pool, { schema });
});

after(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

test('ids are canonical lower-case UUIDv7 with the clock in the first 48 bits', () => {
  const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  const id = uuidv7(ms);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), ms);
});

test('ids within one millisecond carry no counter: their order is random', () => {
  const ms = Date.now();
  const ids = Array.from({ length: 200 }, () => uuidv7(ms));
  const sorted = [...ids].sort();
  assert.notDeepEqual(ids, sorted, 'two hundred ids of one millisecond came out sorted');
});

test('the helper creates the seed table: no seq column, a second index duplicating the primary key', async () => {
  const cols = await pool.query(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'ziro_checkpoints' ORDER BY ordinal_position`,
    [schema],
  );
  assert.deepEqual(cols.rows.map((r) => r.column_name), ['thread_id', 'checkpoint_id', 'snapshot', 'version', 'size_bytes', 'created_at']);
  const idx = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [schema]);
  assert.deepEqual(idx.rows.map((r) => r.indexname), ['ziro_checkpoints_pkey', 'ziro_checkpoints_thread_idx']);
});

test('put keeps cap+1 checkpoints on a real server (its trim reads the snapshot before the insert)', async () => {
  const cp = new PostgresCheckpointer({ pool, schema, maxCheckpointsPerThread: 3 });
  for (let i = 0; i < 5; i++) await cp.put('cap', snap({ i }));
  assert.equal((await cp.list('cap', { limit: 100 })).length, 4);
});

test('version echoes snapshot.version; size_bytes is the UTF-8 length of JSON.stringify', async () => {
  const cp = new PostgresCheckpointer({ pool, schema });
  const s = snap({ text: 'ünïcødé ✓ 😀' });
  const id = await cp.put('facts', s);
  const { rows } = await pool.query(`SELECT version, size_bytes FROM ${table} WHERE checkpoint_id = $1`, [id]);
  assert.equal(rows[0].version, 2);
  assert.equal(rows[0].size_bytes, Buffer.byteLength(JSON.stringify(s), 'utf8'));
  const [meta] = await cp.list('facts');
  assert.deepEqual({ id: meta.id, v: meta.agentSnapshotVersion, size: meta.sizeBytes }, { id, v: 2, size: rows[0].size_bytes });
});

test('a snapshot without a version cannot be stored (NOT NULL); pgcheckpoint stores 0', async () => {
  const cp = new PostgresCheckpointer({ pool, schema });
  await assert.rejects(cp.put('noversion', { __ziro_snapshot__: true }), (err) => err.code === '23502');
});

test('a NUL character in a string reaches the server and fails there with 22P05', async () => {
  const cp = new PostgresCheckpointer({ pool, schema });
  await assert.rejects(cp.put('nul', snap({ s: 'a\u0000b' })), (err) => err.code === '22P05');
});

test('get returns null for unknown threads and ids; delete of nothing is fine', async () => {
  const cp = new PostgresCheckpointer({ pool, schema });
  assert.equal(await cp.get('nobody'), null);
  assert.equal(await cp.get('nobody', 'not-a-uuid'), null);
  await cp.delete('nobody', 'not-a-uuid');
  await cp.delete('nobody');
});
