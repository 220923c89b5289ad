package synapse

import (
	"context"
	"net/http"
	"net/url"
)

// RedactOptions is the body of a user redaction. Rooms empty means every
// room the user is joined to or banned from now (Synapse 1.160 reads
// get_rooms_for_user plus get_rooms_user_currently_banned_from: rooms the
// user left, or was kicked from, are not among them).
type RedactOptions struct {
	Rooms  []string `json:"rooms"`
	Reason string   `json:"reason,omitempty"`
	// Limit is the most events redacted per room, newest first; 0 leaves
	// Synapse's default (1000).
	Limit int64 `json:"limit,omitempty"`
}

// RedactUser starts redacting a user's events and returns the redact id of
// the server task. Synapse refuses (400) while another redaction of the
// same user is active, but not while one is only scheduled.
func (c *Client) RedactUser(ctx context.Context, userID string, opt RedactOptions) (string, error) {
	if opt.Rooms == nil {
		opt.Rooms = []string{} // the body needs the list, empty or not
	}
	var out struct {
		RedactID string `json:"redact_id"`
	}
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/user/%s/redact", url.PathEscape(userID)), opt, &out)
	return out.RedactID, err
}

// RedactTask is a user redaction task as its status reports it.
// FailedRedactions maps an event id to why its redaction failed; the task
// still ends complete.
type RedactTask struct {
	Status           string            `json:"status"`
	Error            string            `json:"error"`
	FailedRedactions map[string]string `json:"failed_redactions"`
}

// RedactStatus returns a redaction's status, or an error for which
// IsNotFound is true (an id the server does not know, or forgot). Like
// DeleteStatus, it skips the rate limiter.
func (c *Client) RedactStatus(ctx context.Context, redactID string) (*RedactTask, error) {
	var t RedactTask
	if _, err := c.doUnlimited(ctx, http.MethodGet, c.admin("/v1/user/redact_status/%s", url.PathEscape(redactID)), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SendServerNotice sends a server notice to a local user under a
// transaction id and returns its event id. Synapse remembers the id only
// in memory, per admin token (or device), for 30 to 60 minutes: a PUT with
// the same id within that window returns the first event and sends none.
//
// An empty txnID POSTs it without one: Synapse 1.160 answers a PUT with a
// 500 when the token has neither a device nor a token id of its own, as a
// token MAS issued has (its transaction cache asserts one); the caller then
// finds a lost answer's notice by reading the user's rooms.
func (c *Client) SendServerNotice(ctx context.Context, userID, txnID string, content map[string]any) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	method, path := http.MethodPut, c.admin("/v1/send_server_notice/%s", url.PathEscape(txnID))
	if txnID == "" {
		method, path = http.MethodPost, c.admin("/v1/send_server_notice")
	}
	_, err := c.do(ctx, method, path, map[string]any{"user_id": userID, "content": content}, &out)
	return out.EventID, err
}
