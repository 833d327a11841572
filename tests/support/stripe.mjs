// Stripe webhook helpers for tests: realistic event bodies and signatures made the way
// Stripe makes them (HMAC-SHA256 of "{t}.{body}" keyed with the whole whsec_ secret).
import { createHmac, randomBytes } from 'node:crypto';
import { TEST_VARS } from './stack.mjs';

export const SECRET = TEST_VARS.STRIPE_WEBHOOK_SECRET;

export function signature(body, { secret = SECRET, t = Math.floor(Date.now() / 1000) } = {}) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export const eventId = () => `evt_${randomBytes(8).toString('hex')}`;
export const customerId = () => `cus_${randomBytes(6).toString('hex')}`;

/** A completed checkout naming the user as `client_reference_id` (`userId`, null: none) and/or `metadata.user_id`. */
export function checkoutCompleted({ customer, userId = null, metadataUserId, created = Math.floor(Date.now() / 1000), id = eventId() }) {
  const metadata = metadataUserId === undefined ? {} : { user_id: metadataUserId };
  return {
    id, object: 'event', type: 'checkout.session.completed', created, livemode: false,
    data: { object: { id: `cs_${randomBytes(6).toString('hex')}`, object: 'checkout.session', customer, client_reference_id: userId, metadata, mode: 'subscription', status: 'complete' } },
  };
}

export function subscriptionEvent({ type = 'customer.subscription.updated', customer, status = 'active', price = 'price_pro_monthly', created, id = eventId() }) {
  return {
    id, object: 'event', type, created, livemode: false,
    data: { object: {
      id: `sub_${customer.slice(4)}`, object: 'subscription', customer, status,
      current_period_end: created + 30 * 86400,
      items: { object: 'list', data: [{ id: 'si_1', price: { id: price, object: 'price', lookup_key: null } }] },
      metadata: {},
    } },
  };
}

export function paymentFailed({ customer, created = Math.floor(Date.now() / 1000), id = eventId() }) {
  return { id, object: 'event', type: 'invoice.payment_failed', created, data: { object: { id: 'in_1', object: 'invoice', customer, subscription: `sub_${customer.slice(4)}` } } };
}

/** POSTs an event (object or raw string) with a valid signature unless `headers` say otherwise. */
export async function deliver(event, { headers, base = process.env.EDGECHAT_URL, sign = true } = {}) {
  const body = typeof event === 'string' ? event : JSON.stringify(event);
  const h = { 'content-type': 'application/json', ...(sign ? { 'stripe-signature': signature(body) } : {}), ...headers };
  const res = await fetch(`${base}/api/v1/webhooks/stripe`, { method: 'POST', headers: h, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, body: json, text };
}
