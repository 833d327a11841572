//! Route handlers: each turns a request into calls into the core and the stores.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod conversations;
pub mod health;
pub mod keys;
pub mod mcp;
pub mod memories;
pub mod messages;
pub mod tasks;
pub mod titles;
pub mod usage;
pub mod users;
pub mod webhooks;
