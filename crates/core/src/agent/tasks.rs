//! Tasks: the tool inputs and REST bodies, their validation, the stored row, the view and the
//! list filter. One validation serves both doors (a tool call and `/api/v1/tasks`).

use crate::body::nullable;
use crate::ids::TaskId;
use crate::time::{parse_rfc3339, rfc3339};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Longest title, in characters.
pub const TITLE_CHARS: usize = 200;
/// Longest notes, in characters.
pub const NOTES_CHARS: usize = 4000;

/// Whether a task is still to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Open,
    Done,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
        }
    }

    /// The value of a `status` query parameter; 400 `invalid_status` otherwise.
    pub fn parse_query(raw: &str) -> Result<TaskStatus, ApiError> {
        match raw {
            "open" => Ok(TaskStatus::Open),
            "done" => Ok(TaskStatus::Done),
            _ => Err(ApiError::bad_request("invalid_status", "status must be `open` or `done`")),
        }
    }
}

/// `add_task` and `POST /api/v1/tasks`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct AddTask {
    /// What to do, 1 to 200 characters.
    pub title: String,
    /// Details, at most 4000 characters.
    pub notes: Option<String>,
    /// When it is due: an RFC 3339 time such as 2027-01-31T09:00:00Z.
    pub due_at: Option<String>,
}

/// `PATCH /api/v1/tasks/{task_id}`: the members sent change; `null` clears notes or due_at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct TaskChanges {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub due_at: Option<Option<String>>,
    pub status: Option<TaskStatus>,
}

/// `update_task`: the task and the members to change.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateTask {
    /// The task's id (`tsk_...`), as add_task or list_tasks gave it.
    pub task_id: String,
    /// A new title, 1 to 200 characters.
    pub title: Option<String>,
    /// New notes (null clears them).
    #[serde(default, deserialize_with = "nullable")]
    pub notes: Option<Option<String>>,
    /// A new due time, RFC 3339 (null clears it).
    #[serde(default, deserialize_with = "nullable")]
    pub due_at: Option<Option<String>>,
    /// `open` or `done`.
    pub status: Option<TaskStatus>,
}

impl UpdateTask {
    /// The id and the changes, the id checked.
    pub fn split(self) -> Result<(TaskId, TaskChanges), ApiError> {
        let id = task_id(&self.task_id)?;
        Ok((id, TaskChanges { title: self.title, notes: self.notes, due_at: self.due_at, status: self.status }))
    }
}

/// `complete_task` and `delete_task`: one task by id.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct TaskRef {
    /// The task's id (`tsk_...`), as add_task or list_tasks gave it.
    pub task_id: String,
}

/// `list_tasks`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct ListTasks {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks due before this RFC 3339 time.
    pub due_before: Option<String>,
    /// How many, 1 to 50 (default 20), newest first.
    pub limit: Option<u32>,
}

/// Most tasks one `list_tasks` call returns.
pub const MAX_TOOL_LIST: u32 = 50;

/// A task id from untrusted text; 422 naming the field when it is not one.
pub fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(raw).ok_or_else(|| ApiError::validation("task_id: not a task id (`tsk_...`)"))
}

/// A new task, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    pub notes: Option<String>,
    pub due_at: Option<u64>,
}

impl NewTask {
    /// The task as stored at `now`: open, not completed.
    pub fn into_task(self, task_id: TaskId, now: u64) -> Task {
        Task {
            task_id,
            title: self.title,
            notes: self.notes,
            status: TaskStatus::Open,
            due_at: self.due_at,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }
}

impl AddTask {
    pub fn validate(self) -> Result<NewTask, ApiError> {
        Ok(NewTask {
            title: title(&self.title)?,
            notes: notes(self.notes.as_deref())?,
            due_at: self.due_at.as_deref().map(|t| time("due_at", t)).transpose()?,
        })
    }
}

/// The filter of a task list, from `list_tasks` or the query string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub due_before: Option<u64>,
}

impl ListTasks {
    pub fn validate(self) -> Result<(TaskFilter, u32), ApiError> {
        let due_before = self.due_before.as_deref().map(|t| time("due_before", t)).transpose()?;
        let limit = self.limit.unwrap_or(crate::cursor::DEFAULT_LIMIT);
        if !(1..=MAX_TOOL_LIST).contains(&limit) {
            return Err(ApiError::validation(format!("limit: must be from 1 to {MAX_TOOL_LIST}")));
        }
        Ok((TaskFilter { status: self.status, due_before }, limit))
    }
}

impl TaskFilter {
    /// The filter of `GET /api/v1/tasks`: `status` and `due_before` (400 when malformed).
    pub fn from_query(query: &str) -> Result<TaskFilter, ApiError> {
        let status = crate::cursor::query_param(query, "status").map(|s| TaskStatus::parse_query(&s)).transpose()?;
        let due_before = crate::cursor::query_param(query, "due_before")
            .map(|t| {
                parse_rfc3339(&t)
                    .ok_or_else(|| ApiError::bad_request("invalid_due_before", "due_before must be an RFC 3339 time"))
            })
            .transpose()?;
        Ok(TaskFilter { status, due_before })
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Task {
    pub task_id: TaskId,
    pub title: String,
    pub notes: Option<String>,
    pub status: TaskStatus,
    pub due_at: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    pub completed_at: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TaskView<'a> {
    pub task_id: &'a str,
    pub title: &'a str,
    pub notes: Option<&'a str>,
    pub status: TaskStatus,
    pub due_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

impl Task {
    pub fn view(&self) -> TaskView<'_> {
        TaskView {
            task_id: &self.task_id,
            title: &self.title,
            notes: self.notes.as_deref(),
            status: self.status,
            due_at: self.due_at.map(rfc3339),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            completed_at: self.completed_at.map(rfc3339),
        }
    }

    /// This task with `changes` applied at `now`: marking it done sets `completed_at`,
    /// reopening clears it. 422 when nothing is to change or a member is invalid.
    pub fn apply(&self, changes: TaskChanges, now: u64) -> Result<Task, ApiError> {
        let TaskChanges { title: new_title, notes: new_notes, due_at: new_due, status } = changes;
        if new_title.is_none() && new_notes.is_none() && new_due.is_none() && status.is_none() {
            return Err(ApiError::validation("nothing to update: send title, notes, due_at and/or status"));
        }
        let mut task = self.clone();
        if let Some(t) = new_title {
            task.title = title(&t)?;
        }
        if let Some(n) = new_notes {
            task.notes = notes(n.as_deref())?;
        }
        if let Some(d) = new_due {
            task.due_at = d.as_deref().map(|t| time("due_at", t)).transpose()?;
        }
        if let Some(s) = status {
            task.completed_at = match (s, self.status) {
                (TaskStatus::Done, TaskStatus::Done) => self.completed_at,
                (TaskStatus::Done, TaskStatus::Open) => Some(now),
                (TaskStatus::Open, _) => None,
            };
            task.status = s;
        }
        task.updated_at = now;
        Ok(task)
    }
}

fn title(raw: &str) -> Result<String, ApiError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(ApiError::validation("title: must not be empty"));
    }
    if t.chars().count() > TITLE_CHARS {
        return Err(ApiError::validation(format!("title: must be at most {TITLE_CHARS} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::validation("title: must not contain control characters"));
    }
    Ok(t.to_string())
}

/// Notes: at most [`NOTES_CHARS`]; blank means none.
fn notes(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(n) if n.chars().count() > NOTES_CHARS => {
            Err(ApiError::validation(format!("notes: must be at most {NOTES_CHARS} characters")))
        }
        Some(n) if !n.trim().is_empty() => Ok(Some(n.to_string())),
        _ => Ok(None),
    }
}

fn time(field: &str, raw: &str) -> Result<u64, ApiError> {
    parse_rfc3339(raw)
        .ok_or_else(|| ApiError::validation(format!("{field}: must be an RFC 3339 time such as 2027-01-31T09:00:00Z")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(json: &str) -> Result<NewTask, ApiError> {
        serde_json::from_str::<AddTask>(json).map_err(|e| ApiError::validation(e.to_string()))?.validate()
    }

    fn task() -> Task {
        Task {
            task_id: TaskId::new([1; 16]),
            title: "buy milk".into(),
            notes: None,
            status: TaskStatus::Open,
            due_at: None,
            created_at: 10,
            updated_at: 10,
            completed_at: None,
        }
    }

    #[test]
    fn a_new_task_is_trimmed_and_its_due_time_read() {
        let t = add(r#"{"title":"  buy milk ","notes":"  ","due_at":"2027-01-31T09:00:00+01:00"}"#).unwrap();
        assert_eq!(t, NewTask { title: "buy milk".into(), notes: None, due_at: parse_rfc3339("2027-01-31T08:00:00Z") });
    }

    #[test]
    fn bad_new_tasks_are_422_naming_the_field() {
        let long = format!(r#"{{"title":"{}"}}"#, "x".repeat(TITLE_CHARS + 1));
        let long_notes = format!(r#"{{"title":"a","notes":"{}"}}"#, "n".repeat(NOTES_CHARS + 1));
        for (json, field) in [
            (r#"{"title":"  "}"#, "title"),
            (long.as_str(), "title"),
            (r#"{"title":"a\u0007b"}"#, "title"),
            (long_notes.as_str(), "notes"),
            (r#"{"title":"a","due_at":"tomorrow"}"#, "due_at"),
            (r#"{"title":"a","due_at":"2027-01-31"}"#, "due_at"),
        ] {
            let err = add(json).unwrap_err();
            assert_eq!(err.status, 422, "{json}");
            assert!(err.message.starts_with(field), "{json}: {}", err.message);
        }
        assert!(serde_json::from_str::<AddTask>(r#"{"title":"a","priority":1}"#).is_err());
    }

    #[test]
    fn completing_sets_completed_at_once_and_reopening_clears_it() {
        let done = task().apply(TaskChanges { status: Some(TaskStatus::Done), ..Default::default() }, 50).unwrap();
        assert_eq!((done.status, done.completed_at, done.updated_at), (TaskStatus::Done, Some(50), 50));
        let again = done.apply(TaskChanges { status: Some(TaskStatus::Done), ..Default::default() }, 60).unwrap();
        assert_eq!(again.completed_at, Some(50));
        let open = again.apply(TaskChanges { status: Some(TaskStatus::Open), ..Default::default() }, 70).unwrap();
        assert_eq!((open.status, open.completed_at), (TaskStatus::Open, None));
    }

    #[test]
    fn changes_clear_with_null_and_refuse_nothing_or_bad_members() {
        let mut t = task();
        t.notes = Some("n".into());
        t.due_at = Some(5);
        let changes: TaskChanges = serde_json::from_str(r#"{"notes":null,"due_at":null}"#).unwrap();
        let cleared = t.apply(changes, 9).unwrap();
        assert_eq!((cleared.notes, cleared.due_at), (None, None));
        assert_eq!(t.apply(TaskChanges::default(), 9).unwrap_err().status, 422);
        let bad: TaskChanges = serde_json::from_str(r#"{"title":""}"#).unwrap();
        assert_eq!(t.apply(bad, 9).unwrap_err().status, 422);
        assert!(serde_json::from_str::<TaskChanges>(r#"{"status":"closed"}"#).is_err());
    }

    #[test]
    fn the_query_filter_reads_status_and_due_before() {
        let f = TaskFilter::from_query("status=done&due_before=2027-01-01T00:00:00Z").unwrap();
        assert_eq!(f, TaskFilter { status: Some(TaskStatus::Done), due_before: parse_rfc3339("2027-01-01T00:00:00Z") });
        assert_eq!(TaskFilter::from_query("").unwrap(), TaskFilter::default());
        assert_eq!(TaskFilter::from_query("status=closed").unwrap_err().code, "invalid_status");
        assert_eq!(TaskFilter::from_query("due_before=soon").unwrap_err().code, "invalid_due_before");
    }

    #[test]
    fn tool_lists_are_bounded() {
        let l = |json: &str| serde_json::from_str::<ListTasks>(json).unwrap().validate();
        assert_eq!(l("{}").unwrap(), (TaskFilter::default(), 20));
        assert_eq!(l(r#"{"limit":50,"status":"open"}"#).unwrap().1, 50);
        assert_eq!(l(r#"{"limit":0}"#).unwrap_err().status, 422);
        assert_eq!(l(r#"{"limit":51}"#).unwrap_err().status, 422);
        assert_eq!(l(r#"{"due_before":"x"}"#).unwrap_err().status, 422);
    }

    #[test]
    fn the_view_shows_times_as_rfc3339() {
        let mut t = task();
        t.due_at = Some(0);
        let json = serde_json::to_value(t.view()).unwrap();
        assert_eq!(json["status"], "open");
        assert_eq!(json["due_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["completed_at"], serde_json::Value::Null);
    }
}
