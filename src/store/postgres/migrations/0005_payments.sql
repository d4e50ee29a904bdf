-- payments (docs/payments.md): each provider event applied once, in the
-- transaction that credits it; subscriptions' state as their events say
-- (an older event never overwrites a newer one)
CREATE TABLE payment_events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  received_at BIGINT NOT NULL);
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  customer TEXT,
  status TEXT NOT NULL,
  current_period_end BIGINT NOT NULL DEFAULT 0,
  event_at BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL);
CREATE INDEX subscriptions_user ON subscriptions(user_id);
CREATE INDEX subscriptions_status ON subscriptions(status);
