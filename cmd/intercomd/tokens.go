package main

import (
	"time"

	"github.com/intercomd/intercomd/usersig"
)

// tokenCheckEvery is how often the daemon looks for revoked (by
// `intercomd usersig --revoke`, in another process) and expired tokens
// among the open connections, and closes theirs.
const tokenCheckEvery = time.Second

// acceptToken refuses revoked tokens (the broker at connect, the API on
// every action) and notes when a token was last used.
func (d *daemon) acceptToken(token string, c usersig.Claims) string {
	if d.tokens == nil {
		return ""
	}
	if reason := d.tokens.Check(token, c); reason != "" {
		return reason
	}
	d.tokens.Seen(token, time.Now())
	return ""
}

// watchTokens closes the connections (MQTT, WHEP) of revoked and expired
// tokens, until stop is closed.
func (d *daemon) watchTokens(secret []byte, stop <-chan struct{}) {
	t := time.NewTicker(tokenCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			_ = d.tokens.Flush()
			return
		case <-t.C:
			if err := d.tokens.Flush(); err != nil {
				d.log.Warn("token registry", "err", err)
			}
			if err := d.tokens.Reload(); err != nil {
				d.log.Warn("token registry", "err", err)
			}
			d.dropRevokedSubscriptions()
			now := time.Now()
			stale := func(user, tok string) bool {
				c, err := usersig.Verify(secret, tok, now)
				return err != nil || c.User != user || d.tokens.Check(tok, c) != ""
			}
			d.broker.Disconnect(stale, "token revoked or expired")
			if w := d.whep.Load(); w != nil {
				w.Drop(stale)
			}
		}
	}
}

// renewToken issues a fresh token for the user and device of a valid one,
// with the same life, once a third of the old one's life is left or less
// (before that it returns the same token): a signed-in app renews without
// the user doing anything, and one client cannot make the registry grow.
// A token the registry does not know (issued before it, or elsewhere with
// the secret) is not renewed: its life is unknown, and a short one must not
// become a long one.
func (d *daemon) renewToken(secret []byte, token string, c usersig.Claims) (string, time.Time, error) {
	if err := d.tokens.Reload(); err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	e, ok := d.tokens.Lookup(token)
	if !ok {
		return token, c.Expires, nil
	}
	life, device := e.Expires.Sub(e.Issued), e.Device
	if c.Expires.Sub(now) > life/3 {
		return token, c.Expires, nil
	}
	exp := now.Add(life)
	fresh, err := usersig.Sign(secret, c.User, exp)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := d.tokens.Add(fresh, c.User, device, now, exp); err != nil {
		return "", time.Time{}, err
	}
	d.log.Info("token renewed", "user", c.User, "device", device, "expires", exp.Format(time.RFC3339))
	return fresh, exp, nil
}

// dropRevokedSubscriptions stops pushing to the phones of users whose
// tokens were all revoked: their subscriptions from before go.
func (d *daemon) dropRevokedSubscriptions() {
	if d.push == nil || d.push.store == nil {
		return
	}
	for user, at := range d.tokens.RevokedUsers() {
		if dropped, err := d.push.store.RemoveUserBefore(user, at); err != nil {
			d.log.Warn("drop push subscriptions of a revoked user", "user", user, "err", err)
		} else if dropped {
			d.log.Info("push subscriptions dropped: the user's tokens were revoked", "user", user)
		}
	}
}

// userTokenSecret is the secret user tokens are verified with (the token
// secret of the state directory, or the configured one).
func (d *daemon) userTokenSecret() ([]byte, error) {
	stateDir, err := d.stateDir()
	if err != nil {
		return nil, err
	}
	return d.tokenSecret(stateDir)
}
