-- wallet login challenges (one use each), shared by every coordinator
CREATE TABLE login_challenges (
  challenge TEXT PRIMARY KEY,
  wallet TEXT NOT NULL,
  expires_at BIGINT NOT NULL);
CREATE INDEX login_challenges_expiry ON login_challenges(expires_at);
