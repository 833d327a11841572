//! `/api/v1/tasks` and `/api/v1/tasks/{task_id}`: the signed-in user's tasks (another user's
//! ids answer 404), the same rows the `*_task` tools work on.

use crate::app::Ctx;
use crate::auth::{authenticate, authenticate_reading};
use crate::http::{json, list_page, read_json, AppError, HandlerResult, Reply};
use crate::runtime;
use crate::store::reads::Read;
use crate::store::tasks as store;
use edgechat_core::agent::tasks::{AddTask, Task, TaskChanges, TaskFilter};
use edgechat_core::cursor::{self, Cursor};
use edgechat_core::ids::TaskId;
use edgechat_core::ApiError;

fn not_found() -> AppError {
    ApiError::not_found("task").into()
}

/// The path's task id; a malformed one cannot exist (404).
fn path_id(cx: &Ctx<'_>) -> Result<TaskId, AppError> {
    TaskId::parse(cx.param("task_id")).ok_or_else(not_found)
}

pub async fn create_task(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let task = read_json::<AddTask>(cx).await?.validate()?;
    let task_id = TaskId::new(runtime::random_bytes()?);
    let now = runtime::now_ms();
    let db = cx.db()?;
    let caps = cx.config.agent_caps;
    if !store::insert(&db, &task_id, &principal.user.user_id, &task, now, caps.tasks_per_user).await? {
        return Err(caps.tasks_reached().into());
    }
    let stored = task.into_task(task_id, now);
    json(201, &stored.view())
}

pub async fn list_tasks(cx: &mut Ctx<'_>) -> HandlerResult {
    let q = cx.query();
    // Errors in the query are answered after authentication's; a good query is read in the
    // session check's round trip.
    let limit = cursor::parse_limit(cursor::query_param(&q, "limit").as_deref());
    let after = cursor::query_param(&q, "cursor").map(|c| Cursor::decode(&c)).transpose();
    let filter = TaskFilter::from_query(&q);
    let read = match (&limit, &after, &filter) {
        (Ok(limit), Ok(after), Ok(filter)) => {
            Some(Read::Tasks { filter: *filter, after: after.as_ref(), fetch: limit + 1 })
        }
        _ => None,
    };
    let (_, results) = authenticate_reading(cx, read.as_slice()).await?;
    let (limit, _, _) = (limit?, after?, filter?);
    let rows = store::tasks(results.first())?;
    let (rows, next_cursor) =
        cursor::page(rows, limit, |t| Cursor { key: t.created_at as i64, id: t.task_id.to_string() });
    let data: Vec<_> = rows.iter().map(Task::view).collect();
    list_page(200, &data, next_cursor)
}

/// Authenticates the request and reads the path's task with the session check: `None` when
/// it is not the user's (or not an id).
async fn authenticate_for_task(cx: &mut Ctx<'_>) -> Result<(crate::auth::Principal, Option<Task>), AppError> {
    let id = TaskId::parse(cx.param("task_id"));
    let read = id.as_deref().map(|task_id| Read::Task { task_id });
    let (principal, results) = authenticate_reading(cx, read.as_slice()).await?;
    Ok((principal, store::tasks(results.first())?.into_iter().next()))
}

pub async fn get_task(cx: &mut Ctx<'_>) -> HandlerResult {
    let (_, task) = authenticate_for_task(cx).await?;
    json(200, &task.ok_or_else(not_found)?.view())
}

pub async fn update_task(cx: &mut Ctx<'_>) -> HandlerResult {
    // The body first, its errors after authentication's.
    let changes = read_json::<TaskChanges>(cx).await;
    let (principal, task) = authenticate_for_task(cx).await?;
    let changes = changes?;
    let task = task.ok_or_else(not_found)?;
    let updated = task.apply(changes, runtime::now_ms())?;
    let db = cx.db()?;
    if !store::update(&db, &principal.user.user_id, &updated).await? {
        return Err(not_found());
    }
    json(200, &updated.view())
}

pub async fn delete_task(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let id = path_id(cx)?;
    let db = cx.db()?;
    if !store::delete(&db, &id, &principal.user.user_id).await? {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}
