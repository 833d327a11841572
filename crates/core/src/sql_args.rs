//! Values bound to a D1 statement's `?1`, `?2`...: the edge hands each to the runtime as a
//! JavaScript value.

/// One bound value: text, an integer (epoch-ms, counts and keys; JavaScript numbers hold
/// them exactly below 2^53) or NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlArg<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}
