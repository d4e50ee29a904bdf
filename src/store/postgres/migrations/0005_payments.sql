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
-- Bitcoin payments (document 003's exchange): one receiving address, so each
-- pending payment's amount is unique and a transaction is matched by amount
CREATE TABLE btc_payments (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  address TEXT NOT NULL,
  amount_sats BIGINT NOT NULL,
  credit_micros BIGINT NOT NULL,
  status TEXT NOT NULL,
  txid TEXT,
  confirmations BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  confirmed_at BIGINT NOT NULL DEFAULT 0);
CREATE INDEX btc_payments_pending ON btc_payments(status, amount_sats);
-- every output seen paying the address, and what became of it (credited, late, unmatched)
CREATE TABLE btc_outputs (
  txid TEXT NOT NULL,
  vout BIGINT NOT NULL,
  amount_sats BIGINT NOT NULL,
  payment_id TEXT,
  outcome TEXT NOT NULL,
  seen_at BIGINT NOT NULL,
  PRIMARY KEY (txid, vout));
