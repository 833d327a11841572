//! Stripe state in D1: each webhook event's effects are written in the same transaction as
//! its event id, so a second delivery (sequential or concurrent) fails the key and changes
//! nothing; subscription events older than the newest applied one are ignored.

use super::{is_unique_violation, num, opt_text, text, Db, SqlArg};
use crate::http::AppError;
use crate::store::D1PreparedStatement;
use edgechat_core::stripe::{Action, Event};

const INSERT_EVENT: &str = "INSERT INTO webhook_events \
     (webhook_event_id, source, event_type, event_created_at, outcome, received_at) VALUES (?1, 'stripe', ?2, ?3, ?4, ?5)";
const LINK_CUSTOMER: &str = "INSERT INTO billing_customers (stripe_customer_id, user_id, updated_at) \
     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE user_id = ?2) \
     ON CONFLICT (stripe_customer_id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at";
// The later of out-of-order subscription events wins (Stripe's `created`, in seconds).
const APPLY_SUBSCRIPTION: &str =
    "INSERT INTO billing_customers (stripe_customer_id, subscription_id, subscription_status, \
     plan, current_period_end, event_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (stripe_customer_id) DO UPDATE SET subscription_id = excluded.subscription_id, \
     subscription_status = excluded.subscription_status, plan = COALESCE(excluded.plan, billing_customers.plan), \
     current_period_end = excluded.current_period_end, event_at = excluded.event_at, updated_at = excluded.updated_at \
     WHERE billing_customers.event_at IS NULL OR billing_customers.event_at <= excluded.event_at";
const MARK_PAST_DUE: &str =
    "UPDATE billing_customers SET subscription_status = 'past_due', updated_at = ?2 WHERE stripe_customer_id = ?1";
// The linked user's plan follows the customer's, once both are known (in either order).
const SYNC_USER_PLAN: &str =
    "UPDATE users SET plan = (SELECT plan FROM billing_customers WHERE stripe_customer_id = ?1), \
     updated_at = ?2 \
     WHERE user_id = (SELECT user_id FROM billing_customers WHERE stripe_customer_id = ?1) \
     AND (SELECT plan FROM billing_customers WHERE stripe_customer_id = ?1) IS NOT NULL";

/// Applies an event exactly once. `plan` is the plan a subscription event gives (None: keep
/// the current one). False when the event was already processed.
pub async fn apply(db: &Db, event: &Event, plan: Option<&str>, now: u64) -> Result<bool, AppError> {
    let outcome = if matches!(event.action, Action::Ignored) { "ignored" } else { "applied" };
    let mut statements: Vec<D1PreparedStatement> = vec![db.stmt(
        INSERT_EVENT,
        &[text(&event.id), text(&event.event_type), num(event.created), text(outcome), num(now)],
    )?];
    match &event.action {
        Action::LinkCustomer { customer_id, user_id } => {
            statements.push(db.stmt(LINK_CUSTOMER, &[text(customer_id), text(user_id), num(now)])?);
            statements.push(db.stmt(SYNC_USER_PLAN, &[text(customer_id), num(now)])?);
        }
        Action::Subscription { customer_id, subscription_id, status, current_period_end, updated_at, .. } => {
            let period_end = current_period_end.map_or(SqlArg::Null, num);
            statements.push(db.stmt(
                APPLY_SUBSCRIPTION,
                &[
                    text(customer_id),
                    text(subscription_id),
                    text(status),
                    opt_text(plan),
                    period_end,
                    num(*updated_at),
                    num(now),
                ],
            )?);
            statements.push(db.stmt(SYNC_USER_PLAN, &[text(customer_id), num(now)])?);
        }
        Action::PaymentFailed { customer_id } => {
            statements.push(db.stmt(MARK_PAST_DUE, &[text(customer_id), num(now)])?);
        }
        Action::Ignored => {}
    }
    match db.batch("stripe event", statements).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e, "webhook_events.webhook_event_id") => Ok(false),
        Err(e) => Err(e),
    }
}
