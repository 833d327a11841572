//! Stripe state in D1: each webhook event's effects are written in the same transaction as
//! its event id, so a second delivery (sequential or concurrent) fails the key and changes
//! nothing; subscription events older than the newest applied one are ignored. A customer
//! belongs to one user: linking it to another takes its plan from the previous one, and
//! both changes are audited (as `stripe`).

use super::{is_unique_violation, num, opt_text, text, Db, SqlArg};
use crate::http::AppError;
use crate::store::D1PreparedStatement;
use edgechat_core::stripe::{Action, Event};

const INSERT_EVENT: &str = "INSERT INTO webhook_events \
     (webhook_event_id, source, event_type, event_created_at, outcome, received_at) VALUES (?1, 'stripe', ?2, ?3, ?4, ?5)";
// A link naming no user is recorded (once) and changes nothing else.
const INSERT_LINK_EVENT: &str = "INSERT INTO webhook_events \
     (webhook_event_id, source, event_type, event_created_at, outcome, received_at) \
     SELECT ?1, 'stripe', ?2, ?3, CASE WHEN EXISTS (SELECT 1 FROM users WHERE user_id = ?4) \
     THEN 'applied' ELSE 'unknown_user' END, ?5";
// What the previous user (`$user`, a users row) of a relinked customer falls back to: the plan
// of another customer still linked to them, else the default plan (?4).
macro_rules! fallback_plan {
    ($user:literal) => {
        concat!(
            "COALESCE((SELECT o.plan FROM billing_customers o WHERE o.user_id = ",
            $user,
            ".user_id AND o.stripe_customer_id <> ?1 AND o.plan IS NOT NULL ORDER BY o.updated_at DESC LIMIT 1), ?4)"
        )
    };
}
// Both audit rows are written before the link changes, while the previous user is known.
// `plan` is what the previous user is moved to, null when their plan was not this customer's.
const AUDIT_UNLINK: &str = concat!(
    "INSERT INTO admin_audit (admin_audit_id, admin_user_id, target_user_id, action, detail, created_at) \
     SELECT ?5, 'stripe', u.user_id, 'billing_unlink', json_object('stripe_customer_id', ?1, 'event_id', ?6, \
     'linked_to', ?2, 'previous_plan', u.plan, 'plan', CASE WHEN u.plan = c.plan THEN ",
    fallback_plan!("u"),
    " END), ?3 FROM billing_customers c JOIN users u ON u.user_id = c.user_id \
     WHERE c.stripe_customer_id = ?1 AND c.user_id <> ?2 AND EXISTS (SELECT 1 FROM users WHERE user_id = ?2)"
);
const AUDIT_LINK: &str =
    "INSERT INTO admin_audit (admin_audit_id, admin_user_id, target_user_id, action, detail, created_at) \
     SELECT ?4, 'stripe', ?2, 'billing_link', json_object('stripe_customer_id', ?1, 'event_id', ?5, \
     'previous_user_id', (SELECT user_id FROM billing_customers WHERE stripe_customer_id = ?1), \
     'plan', (SELECT plan FROM billing_customers WHERE stripe_customer_id = ?1)), ?3 \
     WHERE EXISTS (SELECT 1 FROM users WHERE user_id = ?2) \
     AND NOT EXISTS (SELECT 1 FROM billing_customers WHERE stripe_customer_id = ?1 AND user_id = ?2)";
// The previous user loses the plan this customer gave them (only while it is still theirs).
const DOWNGRADE_PREVIOUS: &str = concat!(
    "UPDATE users SET plan = ",
    fallback_plan!("users"),
    ", updated_at = ?3 \
     WHERE user_id = (SELECT user_id FROM billing_customers WHERE stripe_customer_id = ?1) AND user_id <> ?2 \
     AND plan = (SELECT plan FROM billing_customers WHERE stripe_customer_id = ?1) \
     AND EXISTS (SELECT 1 FROM users WHERE user_id = ?2)"
);
// A user that does not exist is linked to nothing.
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

/// Ids for the audit rows a link may write (the previous user's, the new user's).
pub struct LinkAudit<'a> {
    pub unlink_id: &'a str,
    pub link_id: &'a str,
    /// The plan a user without a paying customer has.
    pub default_plan: &'a str,
}

/// Applies an event exactly once. `plan` is the plan a subscription event gives (None: keep
/// the current one). False when the event was already processed.
pub async fn apply(
    db: &Db,
    event: &Event,
    plan: Option<&str>,
    audit: &LinkAudit<'_>,
    now: u64,
) -> Result<bool, AppError> {
    let outcome = if matches!(event.action, Action::Ignored) { "ignored" } else { "applied" };
    let insert_event = match &event.action {
        Action::LinkCustomer { user_id, .. } => db.stmt(
            INSERT_LINK_EVENT,
            &[text(&event.id), text(&event.event_type), num(event.created), text(user_id), num(now)],
        )?,
        _ => db.stmt(
            INSERT_EVENT,
            &[text(&event.id), text(&event.event_type), num(event.created), text(outcome), num(now)],
        )?,
    };
    let mut statements: Vec<D1PreparedStatement> = vec![insert_event];
    match &event.action {
        Action::LinkCustomer { customer_id, user_id } => {
            let (customer, user, at) = (text(customer_id), text(user_id), num(now));
            let default_plan = text(audit.default_plan);
            statements.extend([
                db.stmt(AUDIT_UNLINK, &[customer, user, at, default_plan, text(audit.unlink_id), text(&event.id)])?,
                db.stmt(AUDIT_LINK, &[customer, user, at, text(audit.link_id), text(&event.id)])?,
                db.stmt(DOWNGRADE_PREVIOUS, &[customer, user, at, default_plan])?,
                db.stmt(LINK_CUSTOMER, &[customer, user, at])?,
                db.stmt(SYNC_USER_PLAN, &[customer, at])?,
            ]);
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
