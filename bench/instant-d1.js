// bench/instant-d1.js — a stand-in for D1, for bench/own-cpu.mjs and bench/perf-cpu.mjs only
// (never for tests or the report): every statement is answered at once, from memory, with the
// rows the benchmarked requests need. With it, workerd's CPU is the worker's own: Miniflare's
// D1 (SQLite in the same process) is what makes the figures of `npm run bench` spread by tenths
// of a millisecond from round to round. The default export makes the binding, once per
// instance (bench/targets.mjs withInstantD1 hands it to the worker as env.DB).

/** The rows a statement returns: a live session's user, admitted counters, a stream slot. */
function rows(sql, args) {
  if (sql.includes('FROM sessions s JOIN users u')) {
    return [{ user_id: args[1], email: 'bench@bench.example', display_name: null, role: 'user', plan: 'free', is_disabled: 0,
      created_at: 1_700_000_000_000, updated_at: 1_700_000_000_000, cache_version: 1 }];
  }
  if (sql.includes('RETURNING request_count')) return [{ request_count: 1 }];
  if (sql.includes('RETURNING tokens')) return [{ tokens: 1 }];
  if (sql.includes('RETURNING stream_id')) return [{ stream_id: args[0] }];
  return [];
}

class Statement {
  constructor(sql, args = []) {
    this.sql = sql;
    this.args = args;
  }

  bind(...args) {
    return new Statement(this.sql, args);
  }

  async all() {
    const writes = this.sql.startsWith('SELECT') ? 0 : 1;
    return { success: true, results: rows(this.sql, this.args), meta: { rows_read: 1, rows_written: writes, changes: writes } };
  }

  async run() {
    return this.all();
  }

  async first() {
    return (await this.all()).results[0] ?? null;
  }
}

// Named as the runtime's binding class: workers-rs accepts a D1 binding by its constructor's name.
class D1Database {
  prepare(sql) {
    return new Statement(sql);
  }

  batch(statements) {
    return Promise.all(statements.map((s) => s.all()));
  }
}

export default function instantD1() {
  return new D1Database();
}
