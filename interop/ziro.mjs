#!/usr/bin/env node
// Drives @ziro-agent/checkpoint-postgres from the command line, so the Go interop test
// (integration/interop_test.go) can make the TypeScript package write and read the table Go uses.
//
//   node ziro.mjs <command> [--dsn S] [--schema S] [--table S] [--cap N] [--now MS] [args]
//
// commands (results as one JSON document on stdout):
//   ensure                  ensureCheckpointsSchema                    -> {}
//   put THREAD              snapshot JSON from stdin                   -> {"id": "..."}
//   get THREAD [ID]         the snapshot (JSON.stringify of what get returns, null when none)
//   list THREAD [LIMIT]     [{"id","threadId","createdAt","agentSnapshotVersion","sizeBytes"}]
//   delete THREAD [ID]                                                 -> {}
//
// --dsn defaults to $PGCHECKPOINT_TEST_DSN; --cap "Infinity" disables trimming; --now fixes the clock the
// ids are made from (milliseconds since the epoch).
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PostgresCheckpointer, ensureCheckpointsSchema } from '@ziro-agent/checkpoint-postgres';

function parseArgs(argv) {
  const flags = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      flags[a.slice(2)] = argv[++i];
    } else {
      rest.push(a);
    }
  }
  return { flags, rest };
}

async function main() {
  const [command, ...argv] = process.argv.slice(2);
  const { flags, rest } = parseArgs(argv);
  const connectionString = flags.dsn ?? process.env.PGCHECKPOINT_TEST_DSN;
  if (!command || !connectionString) {
    throw new Error('usage: ziro.mjs <ensure|put|get|list|delete> [--dsn S] [--schema S] [--table S] [--cap N] [--now MS] [args]');
  }
  const pool = new pg.Pool({ connectionString, max: 1 });
  try {
    const where = { schema: flags.schema, table: flags.table };
    const opts = { pool, ...where };
    if (flags.cap !== undefined) opts.maxCheckpointsPerThread = Number(flags.cap);
    if (flags.now !== undefined) {
      const fixed = Number(flags.now);
      opts.now = () => fixed;
    }
    const cp = new PostgresCheckpointer(opts);
    const [thread, arg] = rest;
    let out;
    switch (command) {
      case 'ensure':
        await ensureCheckpointsSchema(pool, where);
        out = {};
        break;
      case 'put':
        out = { id: await cp.put(thread, JSON.parse(readFileSync(0, 'utf8'))) };
        break;
      case 'get':
        out = await cp.get(thread, arg);
        break;
      case 'list':
        out = (await cp.list(thread, arg === undefined ? undefined : { limit: Number(arg) })).map((m) => ({
          ...m,
          createdAt: m.createdAt.toISOString(),
        }));
        break;
      case 'delete':
        await cp.delete(thread, arg);
        out = {};
        break;
      default:
        throw new Error(`unknown command ${command}`);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  process.stderr.write(`ziro.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
