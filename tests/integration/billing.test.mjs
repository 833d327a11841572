// Stripe webhooks drive plans: signatures, exactly-once delivery, out-of-order events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { grantAdmin, registerUser } from '../support/accounts.mjs';
import { execSql } from '../support/stack.mjs';
import { SECRET, checkoutCompleted, customerId, deliver, paymentFailed, signature, subscriptionEvent } from '../support/stripe.mjs';

const plan = async (u) => (await api('GET', '/api/v1/users/me', { token: u.access_token })).body.plan;
const now = () => Math.floor(Date.now() / 1000);

async function subscribed() {
  const u = await registerUser();
  const customer = customerId();
  const link = await deliver(checkoutCompleted({ customer, userId: u.user.user_id }));
  assert.equal(link.status, 200, link.text);
  return { u, customer };
}

test('a signed subscription event moves the user to the paid plan', async () => {
  const { u, customer } = await subscribed();
  assert.equal(await plan(u), 'free');
  const res = await deliver(subscriptionEvent({ type: 'customer.subscription.created', customer, created: now() }));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { received: true, duplicate: false });
  assert.equal(await plan(u), 'pro');
  const usage = await api('GET', '/api/v1/usage', { token: u.access_token });
  assert.equal(usage.body.plan.name, 'pro');
  assert.equal(usage.body.plan.requests_per_minute, 120);
});

test('bad signatures are 400 and change nothing', async () => {
  const { u, customer } = await subscribed();
  const event = subscriptionEvent({ customer, created: now() });
  const body = JSON.stringify(event);
  const t = now();
  const cases = {
    'body changed by one byte': { body: body.replace('"active"', '"activf"'), sig: signature(body, { t }) },
    'missing header': { body, sig: null },
    'malformed header': { body, sig: 'garbage' },
    'no v1': { body, sig: `t=${t}` },
    'wrong secret': { body, sig: signature(body, { secret: 'whsec_other' }) },
    // Rounded away from the server's clock so a second boundary cannot bring them within 300 s.
    'timestamp 301 s old': { body, sig: () => signature(body, { t: Math.floor(Date.now() / 1000) - 301 }) },
    'timestamp 301 s in the future': { body, sig: () => signature(body, { t: Math.ceil(Date.now() / 1000) + 301 }) },
  };
  for (const [why, { body: b, sig: s }] of Object.entries(cases)) {
    const sig = typeof s === 'function' ? s() : s;
    const res = await deliver(b, { sign: false, headers: sig ? { 'stripe-signature': sig } : {} });
    assert.equal(res.status, 400, `${why}: ${res.status} ${res.text}`);
    assert.ok(['invalid_signature', 'missing_signature', 'malformed_signature', 'timestamp_out_of_tolerance'].includes(res.body.error.code), why);
  }
  assert.equal(await plan(u), 'free');
  // Nothing was recorded: the same event, properly signed, is still new.
  assert.deepEqual((await deliver(event)).body, { received: true, duplicate: false });
  assert.equal(await plan(u), 'pro');
});

test('two v1 signatures with one valid are accepted', async () => {
  const { u, customer } = await subscribed();
  const body = JSON.stringify(subscriptionEvent({ customer, created: now() }));
  const t = now();
  const good = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
  const res = await deliver(body, { sign: false, headers: { 'stripe-signature': `t=${t},v1=${'0'.repeat(64)},v1=${good}` } });
  assert.equal(res.status, 200, res.text);
  assert.equal(await plan(u), 'pro');
});

test('the same event sent twice, and twice at once, has one effect', async () => {
  const { customer } = await subscribed();
  const event = subscriptionEvent({ customer, created: now() });
  assert.equal((await deliver(event)).body.duplicate, false);
  assert.equal((await deliver(event)).body.duplicate, true);
  const concurrent = subscriptionEvent({ customer, created: now() + 1 });
  const results = await Promise.all(Array.from({ length: 5 }, () => deliver(concurrent)));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200]);
  assert.equal(results.filter((r) => r.body.duplicate === false).length, 1);
  const [rows] = await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT COUNT(*) AS n FROM webhook_events WHERE webhook_event_id = '${concurrent.id}'`);
  assert.equal(rows.results[0].n, 1);
});

test('subscription events delivered out of order end in the right plan', async () => {
  const t = now();
  // Cancelled after being created, but the cancellation arrives first.
  const a = await subscribed();
  await deliver(subscriptionEvent({ type: 'customer.subscription.deleted', customer: a.customer, status: 'canceled', created: t + 10 }));
  await deliver(subscriptionEvent({ type: 'customer.subscription.created', customer: a.customer, created: t }));
  assert.equal(await plan(a.u), 'free');
  // Upgraded after a failed start, delivered newest first.
  const b = await subscribed();
  await deliver(subscriptionEvent({ customer: b.customer, status: 'active', created: t + 20 }));
  await deliver(subscriptionEvent({ customer: b.customer, status: 'incomplete_expired', created: t + 5 }));
  assert.equal(await plan(b.u), 'pro');
  // The subscription arrives before the checkout that links the customer to the user.
  const c = await registerUser();
  const customer = customerId();
  await deliver(subscriptionEvent({ type: 'customer.subscription.created', customer, created: t }));
  assert.equal(await plan(c), 'free');
  await deliver(checkoutCompleted({ customer, userId: c.user.user_id }));
  assert.equal(await plan(c), 'pro');
});

test('a failed payment marks the subscription past due', async () => {
  const { u, customer } = await subscribed();
  await deliver(subscriptionEvent({ customer, created: now() }));
  assert.equal((await deliver(paymentFailed({ customer }))).status, 200);
  const [rows] = await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT subscription_status FROM billing_customers WHERE stripe_customer_id = '${customer}'`);
  assert.equal(rows.results[0].subscription_status, 'past_due');
  assert.equal(await plan(u), 'pro', 'past due keeps the plan until Stripe cancels');
});

test('malformed events and unknown types are handled without a 500', async () => {
  expectError(assert, await deliver('{not json'), 400, 'invalid_event');
  expectError(assert, await deliver({ id: 'evt_x', type: 'customer.subscription.updated', created: now(), data: {} }), 400, 'invalid_event');
  const ignored = await deliver({ id: `evt_ignored_${now()}`, type: 'charge.succeeded', created: now(), data: { object: {} } });
  assert.deepEqual(ignored.body, { received: true, duplicate: false });
});

/** The audit rows Stripe wrote about `userId`, oldest first, read by an admin through the API. */
async function stripeAudit(userId) {
  const admin = await registerUser();
  await grantAdmin(process.env.EDGECHAT_PERSIST_DIR, admin.email);
  const res = await api('GET', '/api/v1/admin/audit?limit=100', { token: admin.access_token });
  assert.equal(res.status, 200, res.text);
  return res.body.data.filter((a) => a.admin_user_id === 'stripe' && a.target_user_id === userId).reverse();
}

const linkedUser = async (customer) => (await execSql(process.env.EDGECHAT_PERSIST_DIR,
  `SELECT user_id FROM billing_customers WHERE stripe_customer_id = '${customer}'`))[0].results[0]?.user_id;

test('a customer linked to another user leaves the previous user on the default plan, and both changes are audited', async () => {
  const { u: first, customer } = await subscribed();
  await deliver(subscriptionEvent({ type: 'customer.subscription.created', customer, created: now() }));
  assert.equal(await plan(first), 'pro');
  const second = await registerUser();
  const relink = checkoutCompleted({ customer, userId: second.user.user_id });
  assert.deepEqual((await deliver(relink)).body, { received: true, duplicate: false });
  assert.equal(await plan(second), 'pro', 'the new user gets the subscription\'s plan');
  assert.equal(await plan(first), 'free', 'the previous user loses it');
  const usage = await api('GET', '/api/v1/usage', { token: first.access_token });
  assert.equal(usage.body.plan.name, 'free');
  assert.equal(await linkedUser(customer), second.user.user_id);

  const unlinked = await stripeAudit(first.user.user_id);
  assert.deepEqual(unlinked.map((a) => [a.action, a.detail.stripe_customer_id]), [['billing_link', customer], ['billing_unlink', customer]]);
  assert.deepEqual(unlinked[1].detail, { stripe_customer_id: customer, event_id: relink.id, linked_to: second.user.user_id, previous_plan: 'pro', plan: 'free' });
  const linked = await stripeAudit(second.user.user_id);
  assert.equal(linked.length, 1);
  assert.equal(linked[0].action, 'billing_link');
  assert.deepEqual(linked[0].detail, { stripe_customer_id: customer, event_id: relink.id, previous_user_id: first.user.user_id, plan: 'pro' });

  // The same delivery again changes nothing and audits nothing more.
  assert.deepEqual((await deliver(relink)).body, { received: true, duplicate: true });
  assert.equal((await stripeAudit(second.user.user_id)).length, 1);
  // Linked back through metadata.user_id: the second user drops to free, the first is pro again.
  await deliver(checkoutCompleted({ customer, metadataUserId: first.user.user_id }));
  assert.equal(await plan(first), 'pro');
  assert.equal(await plan(second), 'free');
  assert.deepEqual((await stripeAudit(second.user.user_id)).map((a) => a.action), ['billing_link', 'billing_unlink']);
});

test('a previous user with another paying customer keeps that customer\'s plan', async () => {
  const first = await registerUser();
  const [paid, other] = [customerId(), customerId()];
  // Two customers for one user: the newer subscription (pro) is the one the user is on.
  await deliver(checkoutCompleted({ customer: paid, userId: first.user.user_id }));
  await deliver(subscriptionEvent({ customer: paid, created: now() }));
  await deliver(checkoutCompleted({ customer: other, userId: first.user.user_id }));
  await deliver(subscriptionEvent({ customer: other, created: now() }));
  assert.equal(await plan(first), 'pro');
  // Moving one of them away leaves the other's plan in place.
  const second = await registerUser();
  await deliver(checkoutCompleted({ customer: other, userId: second.user.user_id }));
  assert.equal(await plan(first), 'pro', 'the remaining customer still pays for pro');
  assert.equal(await plan(second), 'pro');
});

test('a checkout naming an unknown user links nothing, and is acknowledged and recorded once', async () => {
  const { u, customer } = await subscribed();
  await deliver(subscriptionEvent({ type: 'customer.subscription.created', customer, created: now() }));
  const ghost = `usr_${randomBytes(16).toString('base64url')}`;
  for (const event of [checkoutCompleted({ customer, userId: ghost }), checkoutCompleted({ customer, metadataUserId: ghost })]) {
    assert.deepEqual((await deliver(event)).body, { received: true, duplicate: false });
    assert.deepEqual((await deliver(event)).body, { received: true, duplicate: true });
    const [rows] = await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT outcome FROM webhook_events WHERE webhook_event_id = '${event.id}'`);
    assert.deepEqual(rows.results, [{ outcome: 'unknown_user' }]);
  }
  assert.equal(await linkedUser(customer), u.user.user_id, 'the customer stays with its user');
  assert.equal(await plan(u), 'pro');
  assert.deepEqual((await stripeAudit(u.user.user_id)).map((a) => a.action), ['billing_link']);
  // A new customer naming nobody gets no link at all.
  const lonely = customerId();
  await deliver(checkoutCompleted({ customer: lonely, userId: 'not-a-user-id' }));
  assert.equal(await linkedUser(lonely), undefined);
});
