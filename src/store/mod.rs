//! D1 access: every SQL statement of the Worker lives under this module, parameterized.

use worker::D1Database;

const PING: &str = "SELECT 1 AS ok";

/// True when D1 answers a trivial query.
pub async fn ping(db: &D1Database) -> bool {
    db.prepare(PING).first::<serde_json::Value>(Some("ok")).await.is_ok_and(|v| v.is_some())
}
