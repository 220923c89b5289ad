package pipeline

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/synapse"
)

// Sync is --sync: accounts in Scope that the roster does not name are
// closed by Action.
type Sync struct {
	Action jobs.Action
	// Scope is --sync-scope as given; it must match a full user id (it is
	// anchored at both ends).
	Scope string
	// Max is --sync-max: more accounts than that to close refuses the run.
	Max int
	// Keep are accounts never closed: the admin running it, the server
	// notices account.
	Keep []string
}

// CompileScope anchors --sync-scope so it must match a whole user id: a
// scope of "@.*:example.org" cannot catch "@x:example.org.evil", and
// "staff" alone matches no one rather than everyone with staff in the name.
func CompileScope(scope string) (*regexp.Regexp, error) {
	if strings.TrimSpace(scope) == "" {
		return nil, errors.New("--sync needs --sync-scope REGEX: the user ids sync may close (e.g. '@.*:example.org')")
	}
	re, err := regexp.Compile("^(?:" + scope + ")$")
	if err != nil {
		return nil, fmt.Errorf("--sync-scope %s: %w", formats.Quote(scope), err)
	}
	return re, nil
}

// ErrSyncMax is a sync that would close more accounts than --sync-max.
var ErrSyncMax = errors.New("more accounts to close than --sync-max")

// SyncJobs lists the server's active local accounts and returns a job for
// each one in scope that the roster does not name and that the action
// would change: never an account in Keep, an application service's, or
// (for lock and suspend) one already so. It sends only GET requests. The
// list pages by offset and may repeat a user; each is taken once.
func SyncJobs(ctx context.Context, client *synapse.Client, s Sync, serverName string, ch *Checked, retry synapse.Retry) ([]*jobs.Job, error) {
	re, err := CompileScope(s.Scope)
	if err != nil {
		return nil, err
	}
	if ch.ByMatch > 0 {
		return nil, fmt.Errorf("--sync needs every row to name its user by user_id (%d rows name theirs by --match-by): it cannot tell who the roster names otherwise", ch.ByMatch)
	}
	seen := map[string]bool{}
	var ids []string
	noGuests := false
	from := ""
	for {
		var page []synapse.ListedUser
		var next string
		if _, err := retry.Do(ctx, func(ctx context.Context) error {
			var err error
			// Guests are no one's roster row, and a server with MAS refuses
			// the list unless they are left out.
			page, next, err = client.ListUsers(ctx, synapse.ListFilter{Guests: &noGuests}, from, 500)
			return err
		}); err != nil {
			return nil, fmt.Errorf("list the server's accounts: %w", err)
		}
		for _, u := range page {
			id := u.Name
			if seen[id] || bool(u.Deactivated) || !strings.HasSuffix(id, ":"+serverName) {
				continue
			}
			seen[id] = true
			if !re.MatchString(id) || ch.Named[id] || slices.Contains(s.Keep, id) {
				continue
			}
			if s.Action == jobs.Lock && bool(u.Locked) {
				continue
			}
			ids = append(ids, id)
		}
		if next == "" || len(page) == 0 {
			break
		}
		from = next
	}
	slices.Sort(ids)
	why := fmt.Sprintf("--sync %s: not in the roster, and in --sync-scope '%s'", s.Action, s.Scope)
	var out []*jobs.Job
	for _, id := range ids {
		// The list does not say who an application service registered,
		// nor who is suspended: the account's own record does.
		var u *synapse.User
		if _, err := retry.Do(ctx, func(ctx context.Context) error {
			var err error
			u, err = client.GetUser(ctx, id)
			return err
		}); err != nil {
			if synapse.IsNotFound(err) {
				continue // gone since the list
			}
			return nil, fmt.Errorf("read %s: %w", id, err)
		}
		if u.AppserviceID != nil && *u.AppserviceID != "" || bool(u.Deactivated) || s.Action == jobs.Suspend && bool(u.Suspended) {
			continue
		}
		j, err := jobs.SyncJob(s.Action, id, why)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// CheckSyncMax refuses a sync that would close more than --sync-max
// accounts: a roster that lost rows by mistake (a filter left on in the
// sheet) must not close the people it lost.
func CheckSyncMax(s Sync, n int) error {
	if n <= s.Max {
		return nil
	}
	return fmt.Errorf("%w: --sync %s would close %d accounts that the roster does not name, more than --sync-max %d; "+
		"check the roster lost no rows (a filter left on in the sheet?), then raise --sync-max to %d if these are right (plan lists them)",
		ErrSyncMax, s.Action, n, s.Max, n)
}
