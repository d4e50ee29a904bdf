-- wallet login challenges (one use each), in the store so that any coordinator can take the answer
CREATE TABLE login_challenges (
  challenge TEXT PRIMARY KEY,
  wallet TEXT NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX login_challenges_expiry ON login_challenges(expires_at);
