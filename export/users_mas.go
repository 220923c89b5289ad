package export

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// masLister lists users on a server whose accounts live in MAS: MAS's user
// list, paged by cursor (stable under concurrent writes, unlike Synapse's
// offsets), joined with Synapse's profiles.
type masLister struct {
	m *mas.Client
	c *synapse.Client
	f synapse.ListFilter

	once      sync.Once
	server    string
	providers map[string]string // MAS provider id → the name rows use
	onceErr   error
	mu        sync.Mutex
	users     map[string]*mas.User // by user id, for fetch
}

func (l *masLister) init(ctx context.Context) error {
	l.once.Do(func() {
		me, err := l.c.Self(ctx)
		if err != nil {
			l.onceErr = err
			return
		}
		_, l.server, _ = strings.Cut(me, ":")
		ps, err := l.m.Providers(ctx)
		if err != nil {
			l.onceErr = fmt.Errorf("read MAS's upstream providers: %w", err)
			return
		}
		l.providers = map[string]string{}
		for _, pv := range ps {
			l.providers[pv.ID] = jobs.ProviderName(pv)
		}
	})
	return l.onceErr
}

// page reads one page of MAS users after cursor from, filtered as the
// Synapse list would be (name, user id, deactivated, admins only).
func (l *masLister) page(ctx context.Context, from string, n int) ([]synapse.ListedUser, string, error) {
	if err := l.init(ctx); err != nil {
		return nil, "", err
	}
	// MAS's status "active" leaves locked users out, which Synapse's list
	// keeps: all are read, and deactivated ones dropped here unless asked for.
	us, next, err := l.m.UsersPage(ctx, "", from, n)
	if err != nil {
		return nil, "", err
	}
	var out []synapse.ListedUser
	for _, u := range us {
		if u.Deactivated() && !l.f.Deactivated {
			continue
		}
		id := "@" + u.Username + ":" + l.server
		if l.f.AdminsOnly && !u.Admin || l.f.UserID != "" && !strings.Contains(id, l.f.UserID) {
			continue
		}
		l.mu.Lock()
		l.users[id] = u
		l.mu.Unlock()
		out = append(out, synapse.ListedUser{Name: id})
	}
	return out, next, nil
}

// fetch reads one user's record: MAS's status, admin flag, emails and
// links, and Synapse's profile.
func (l *masLister) fetch(ctx context.Context, lu synapse.ListedUser) (*UserRecord, error) {
	l.mu.Lock()
	u := l.users[lu.Name]
	l.mu.Unlock()
	r := &UserRecord{UserID: lu.Name, Admin: u.Admin, Deactivated: u.Deactivated(), Locked: u.Locked(), CreationTS: u.CreatedAt.Unix()}
	var su *synapse.User
	err := listRetry(ctx, func() error {
		var err error
		su, err = l.c.GetUser(ctx, lu.Name)
		if synapse.IsNotFound(err) {
			su, err = nil, nil // not provisioned yet: no profile
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if su != nil {
		r.Displayname, r.AvatarURL, r.UserType = deref(su.Displayname), deref(su.AvatarURL), deref(su.UserType)
		r.ShadowBanned, r.Erased = bool(su.ShadowBan), bool(su.Erased)
	}
	if l.f.Name != "" && !strings.Contains(u.Username, l.f.Name) && !strings.Contains(r.Displayname, l.f.Name) {
		return nil, &synapse.Error{Status: 404, Message: "left out by --name"} // skipped as a deleted user is
	}
	var emails []mas.Email
	if err := listRetry(ctx, func() error {
		var err error
		emails, err = l.m.Emails(ctx, u.ID)
		return err
	}); err != nil {
		return nil, fmt.Errorf("emails: %w", err)
	}
	for _, e := range emails {
		r.Emails = append(r.Emails, strings.ToLower(e.Email))
	}
	var links []mas.Link
	if err := listRetry(ctx, func() error {
		var err error
		links, err = l.m.Links(ctx, u.ID)
		return err
	}); err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	for _, k := range links {
		r.ExternalIDs = append(r.ExternalIDs, l.providers[k.ProviderID]+":"+k.Subject)
	}
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
