package synapse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrCannotCheck is a password check the server would not answer: password
// login is disabled (SSO only, Matrix Authentication Service), the account
// cannot log in (deactivated, locked), or logins are rate limited for long.
var ErrCannotCheck = errors.New("cannot check the password by logging in")

// PasswordLogsIn settles a password write whose answer was lost, without
// writing the password again: it logs in as the user with the password and,
// when that works, logs the new session out at once, so it leaves no device
// behind. It reports false when the server refuses the password (so it is
// not in effect now), and an error wrapping ErrCannotCheck when the server
// cannot tell. Lost answers and gateway errors come back as they are, for
// the caller to retry.
//
// A 429 on the login is waited out here when it is short: the shared pause
// is for the Admin API, and the login limit (rc_login) is the user's own.
func (c *Client) PasswordLogsIn(ctx context.Context, userID, password string) (bool, error) {
	body := map[string]any{
		"type":                        "m.login.password",
		"identifier":                  map[string]any{"type": "m.id.user", "user": userID},
		"password":                    password,
		"initial_device_display_name": checkDevice,
	}
	var out struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	for try := 1; ; try++ {
		_, err := c.send(ctx, call{method: http.MethodPost, path: "/_matrix/client/v3/login", in: body, out: &out})
		var se *Error
		switch {
		case err == nil:
			return true, c.endCheckSession(ctx, userID, out.AccessToken)
		case errors.As(err, &se) && se.Status == http.StatusForbidden && se.Errcode == "M_FORBIDDEN":
			return false, nil // "Invalid username or password"
		case errors.As(err, &se) && se.Status == http.StatusTooManyRequests && se.RetryAfter > 0:
			if se.RetryAfter > 10*time.Second || try >= 3 {
				return false, fmt.Errorf("%w: logins for %s are rate limited (%v)", ErrCannotCheck, userID, err)
			}
			if err := sleep(ctx, se.RetryAfter); err != nil {
				return false, err
			}
			continue
		case IsRetryable(err):
			// A 429 without a hint (a proxy's, not Synapse's: its login
			// limits always say how long) is the row's to retry, like a 503.
			// The login may have landed with its answer lost: leave no
			// session of it behind.
			if serr := c.sweepCheckSessions(ctx, userID); serr != nil {
				return false, errors.Join(err, serr)
			}
			return false, err
		default:
			// M_USER_DEACTIVATED, M_USER_LOCKED, an unknown login type
			// (password login off), MAS's 404: the server cannot say.
			return false, fmt.Errorf("%w: %v", ErrCannotCheck, err)
		}
	}
}

// checkDevice names the session a password check opens, so that one whose
// login answer was lost can still be found and removed.
const checkDevice = "synbatch password check (removed at once)"

// endCheckSession removes the session a password check opened: a logout
// with its own token, then a sweep for any other check session (one whose
// login answer was lost, or a logout that did not land).
func (c *Client) endCheckSession(ctx context.Context, userID, token string) error {
	_, _ = c.send(ctx, call{method: http.MethodPost, path: "/_matrix/client/v3/logout", in: map[string]any{}, token: token})
	return c.sweepCheckSessions(ctx, userID)
}

// sweepCheckSessions deletes the user's devices that password checks opened.
func (c *Client) sweepCheckSessions(ctx context.Context, userID string) error {
	_, err := Retry{Attempts: 5}.Do(ctx, func(ctx context.Context) error {
		devs, err := c.Devices(ctx, userID)
		if err != nil {
			return err
		}
		var ids []string
		for _, d := range devs {
			if d.DisplayName == checkDevice {
				ids = append(ids, d.DeviceID)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return c.DeleteDevices(ctx, userID, ids)
	})
	if err == nil {
		return nil
	}
	return fmt.Errorf("remove the session a password check opened for %s: %w", userID, err)
}

// SSOProviders lists the identity providers the server offers for login:
// the ids of the m.login.sso flow's identity_providers in GET
// /_matrix/client/v3/login. A server with no SSO flow lists none. These
// ids are the auth_provider values that external ids must carry to match a
// login: Synapse stores external ids of any provider id without checking.
func (c *Client) SSOProviders(ctx context.Context) ([]string, error) {
	var out struct {
		Flows []struct {
			Type              string `json:"type"`
			IdentityProviders []struct {
				ID string `json:"id"`
			} `json:"identity_providers"`
		} `json:"flows"`
	}
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/_matrix/client/v3/login", out: &out, sharedPause: true}); err != nil {
		return nil, err
	}
	ids := []string{}
	for _, f := range out.Flows {
		if f.Type != "m.login.sso" {
			continue
		}
		for _, p := range f.IdentityProviders {
			ids = append(ids, p.ID)
		}
	}
	return ids, nil
}
