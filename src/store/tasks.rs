//! Tasks in D1: every statement owner-scoped (`user_id = ?`), keyset pages newest first with
//! the optional status and due-time filters.

use super::{num, opt_text, rows, signed, text, Db};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::agent::tasks::{NewTask, Task, TaskFilter};
use edgechat_core::cursor::Cursor;

const COLUMNS: &str = "task_id, title, notes, status, due_at, created_at, updated_at, completed_at";
// Only under the user's cap (?7): one statement, so the count and the insert cannot interleave
// with another writer's (D1 runs statements one at a time).
const INSERT: &str = "INSERT INTO tasks \
     (task_id, user_id, title, notes, status, due_at, created_at, updated_at) \
     SELECT ?1, ?2, ?3, ?4, 'open', ?5, ?6, ?6 \
     WHERE (SELECT COUNT(*) FROM tasks WHERE user_id = ?2) < ?7 RETURNING task_id";
const SELECT: &str = "SELECT task_id, title, notes, status, due_at, created_at, updated_at, completed_at \
     FROM tasks WHERE task_id = ?1 AND user_id = ?2";
const UPDATE: &str = "UPDATE tasks SET title = ?3, notes = ?4, status = ?5, due_at = ?6, completed_at = ?7, \
     updated_at = ?8 WHERE task_id = ?1 AND user_id = ?2";
const DELETE: &str = "DELETE FROM tasks WHERE task_id = ?1 AND user_id = ?2";

/// Everything a user owns in this module, deleted with their account.
pub const DELETE_ALL_OF_USER: &str = "DELETE FROM tasks WHERE user_id = ?1";

/// Stores the task unless the user already has `max_tasks`; false when refused.
pub async fn insert(
    db: &Db,
    task_id: &str,
    user_id: &str,
    task: &NewTask,
    now: u64,
    max_tasks: u64,
) -> Result<bool, AppError> {
    let due = task.due_at.map_or(super::SqlArg::Null, num);
    let args = [
        text(task_id),
        text(user_id),
        text(&task.title),
        opt_text(task.notes.as_deref()),
        due,
        num(now),
        num(max_tasks),
    ];
    let result = db.query("insert task", db.stmt(INSERT, &args)?).await?;
    Ok(super::returned_a_row(Some(&result)))
}

pub async fn find(db: &Db, task_id: &str, user_id: &str) -> Result<Option<Task>, AppError> {
    db.first("find task", find_statement(db, task_id, user_id)?).await
}

/// The query behind [`find`], to batch with others.
pub fn find_statement(db: &Db, task_id: &str, user_id: &str) -> Result<D1PreparedStatement, AppError> {
    db.stmt(SELECT, &[text(task_id), text(user_id)])
}

/// Tasks a batched statement returned.
pub fn tasks(result: Option<&D1Result>) -> Result<Vec<Task>, AppError> {
    rows("tasks", result)
}

/// Writes every member of `task` (as [`Task::apply`] made it); false when the user has no
/// such task (any more).
pub async fn update(db: &Db, user_id: &str, task: &Task) -> Result<bool, AppError> {
    let args = [
        text(&task.task_id),
        text(user_id),
        text(&task.title),
        opt_text(task.notes.as_deref()),
        text(task.status.as_str()),
        task.due_at.map_or(super::SqlArg::Null, num),
        task.completed_at.map_or(super::SqlArg::Null, num),
        num(task.updated_at),
    ];
    Ok(db.run("update task", db.stmt(UPDATE, &args)?).await? > 0)
}

/// False when the user has no such task.
pub async fn delete(db: &Db, task_id: &str, user_id: &str) -> Result<bool, AppError> {
    Ok(db.run("delete task", db.stmt(DELETE, &[text(task_id), text(user_id)])?).await? > 0)
}

/// One page of the user's tasks matching `filter`, newest first, after `after` (`fetch` rows:
/// the caller asks for one more than it shows).
pub async fn list(
    db: &Db,
    user_id: &str,
    filter: TaskFilter,
    after: Option<&Cursor>,
    fetch: u32,
) -> Result<Vec<Task>, AppError> {
    db.all("list tasks", list_statement(db, user_id, filter, after, fetch)?).await
}

/// The query behind [`list`], to batch with others. The text only adds the conditions in use,
/// so each combination runs on its own index.
pub fn list_statement(
    db: &Db,
    user_id: &str,
    filter: TaskFilter,
    after: Option<&Cursor>,
    fetch: u32,
) -> Result<D1PreparedStatement, AppError> {
    let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE user_id = ?1");
    let mut args = vec![text(user_id)];
    if let Some(status) = filter.status {
        args.push(text(status.as_str()));
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    if let Some(due_before) = filter.due_before {
        args.push(num(due_before));
        sql.push_str(&format!(" AND due_at IS NOT NULL AND due_at < ?{}", args.len()));
    }
    if let Some(c) = after {
        args.push(signed(c.key));
        args.push(text(&c.id));
        let (k, i) = (args.len() - 1, args.len());
        sql.push_str(&format!(" AND (created_at < ?{k} OR (created_at = ?{k} AND task_id < ?{i}))"));
    }
    args.push(num(fetch.into()));
    sql.push_str(&format!(" ORDER BY created_at DESC, task_id DESC LIMIT ?{}", args.len()));
    db.stmt(&sql, &args)
}
