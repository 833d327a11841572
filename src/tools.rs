//! The built-in tools' executors: a validated call (`edgechat_core::agent`) run on the calling
//! user's rows only, through the same stores as the REST routes. Every result is JSON text
//! for the model, size-capped; bad arguments and unknown ids are tool errors, not failures.

use crate::http::AppError;
use crate::runtime;
use crate::store::{conversations, memories, tasks, Db};
use edgechat_core::agent::memories::Memory;
use edgechat_core::agent::tasks::{Task, TaskChanges, TaskStatus};
use edgechat_core::agent::{capped_list, one, Call, Caps, ConversationHit, Tool, ToolError};
use edgechat_core::ids::{MemoryId, TaskId};
use edgechat_core::serde_json::json;

/// What a tool call gives back: its text, and whether it is an error the model should see.
pub struct Outcome {
    pub is_error: bool,
    pub text: String,
}

/// Validates `arguments` (JSON text) for `tool` and runs it for `user_id`, within `caps`.
/// Only a platform failure (D1) is an `Err`.
pub async fn run(db: &Db, user_id: &str, caps: Caps, tool: Tool, arguments: &str) -> Result<Outcome, AppError> {
    let result = match tool.validate(arguments) {
        Ok(call) => execute(db, user_id, caps, call).await?,
        Err(e) => Err(e),
    };
    Ok(match result {
        Ok(text) => Outcome { is_error: false, text },
        Err(ToolError(text)) => Outcome { is_error: true, text },
    })
}

async fn execute(db: &Db, user_id: &str, caps: Caps, call: Call) -> Result<Result<String, ToolError>, AppError> {
    let now = runtime::now_ms();
    Ok(Ok(match call {
        Call::AddTask(new) => {
            let task_id = TaskId::new(runtime::random_bytes()?);
            if !tasks::insert(db, &task_id, user_id, &new, now, caps.tasks_per_user).await? {
                return Ok(Err(caps.tasks_reached().into()));
            }
            let task = new.into_task(task_id, now);
            one(&task.view())
        }
        Call::ListTasks { filter, limit } => {
            let rows = tasks::list(db, user_id, filter, None, limit + 1).await?;
            let more = rows.len() > limit as usize;
            let views: Vec<_> = rows.iter().take(limit as usize).map(Task::view).collect();
            capped_list("tasks", &views, more)
        }
        Call::UpdateTask { task_id, changes } => return change_task(db, user_id, &task_id, changes, now).await,
        Call::CompleteTask(task_id) => {
            let changes = TaskChanges { status: Some(TaskStatus::Done), ..TaskChanges::default() };
            return change_task(db, user_id, &task_id, changes, now).await;
        }
        Call::DeleteTask(task_id) => {
            if !tasks::delete(db, &task_id, user_id).await? {
                return Ok(Err(ToolError::not_found("task")));
            }
            one(&json!({ "deleted": task_id }))
        }
        Call::Remember(content) => {
            let memory = Memory { memory_id: MemoryId::new(runtime::random_bytes()?), content, created_at: now };
            if !memories::insert(db, &memory.memory_id, user_id, &memory.content, now, caps.memories_per_user).await? {
                return Ok(Err(caps.memories_reached().into()));
            }
            one(&memory.view())
        }
        Call::Recall { fts, limit } => {
            let rows = memories::search(db, user_id, &fts, limit + 1, 0).await?;
            let more = rows.len() > limit as usize;
            let views: Vec<_> = rows.iter().take(limit as usize).map(Memory::view).collect();
            capped_list("memories", &views, more)
        }
        Call::Forget(memory_id) => {
            if !memories::delete(db, &memory_id, user_id).await? {
                return Ok(Err(ToolError::not_found("memory")));
            }
            one(&json!({ "forgotten": memory_id }))
        }
        Call::SearchConversations { fts, limit } => {
            let statement = conversations::search_statement(db, user_id, &fts, limit + 1, 0)?;
            let rows = conversations::conversations(Some(&db.query("search conversations", statement).await?))?;
            let more = rows.len() > limit as usize;
            let hits: Vec<ConversationHit<'_>> = rows.iter().take(limit as usize).map(ConversationHit::from).collect();
            capped_list("conversations", &hits, more)
        }
    }))
}

async fn change_task(
    db: &Db,
    user_id: &str,
    task_id: &TaskId,
    changes: TaskChanges,
    now: u64,
) -> Result<Result<String, ToolError>, AppError> {
    let Some(task) = tasks::find(db, task_id, user_id).await? else {
        return Ok(Err(ToolError::not_found("task")));
    };
    let updated = match task.apply(changes, now) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e.into())),
    };
    if !tasks::update(db, user_id, &updated).await? {
        return Ok(Err(ToolError::not_found("task")));
    }
    Ok(Ok(one(&updated.view())))
}
