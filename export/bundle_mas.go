package export

import (
	"context"
	"fmt"
	"strings"

	"github.com/synbatch/synbatch/mas"
)

// On a server whose accounts live in MAS, Synapse's Admin API does not see
// what MAS holds about a user: its emails as MAS keeps them, its links to
// the company's identity provider, its sessions with their addresses and
// user agents. A data subject request must include them, so each bundle
// gets four more files, written as MAS gives them (every attribute, also
// ones synbatch does not model), with their checksums in manifest.json like
// every other file.

// MASDocs are the files a bundle holds on a MAS server, besides bundleDocs.
func MASDocs() []string {
	return []string{"mas_user.json", "mas_emails.json", "mas_upstream_links.json", "mas_sessions.json"}
}

// masProvider is a provider as the bundle names it.
type masProvider struct {
	ID        string  `json:"id"`
	HumanName *string `json:"human_name"`
	BrandName *string `json:"brand_name"`
	Issuer    *string `json:"issuer"`
}

// masDocs writes the MAS files of user id. A user MAS does not know (an
// account never migrated) gets files saying so, and a note.
func (b *bundler) masDocs(ctx context.Context, id string, doc func(string, func() (any, error)) error, res *BundleResult) error {
	m := b.cfg.MAS
	local, _, _ := strings.Cut(strings.TrimPrefix(id, "@"), ":")
	var user *mas.User
	if err := b.retry(ctx, func() error {
		var err error
		user, err = m.UserByUsername(ctx, local)
		return err
	}); err != nil {
		return fmt.Errorf("mas_user.json: read %s in MAS: %w", id, err)
	}
	if user == nil {
		res.Notes = append(res.Notes, "MAS holds no user "+local+": its MAS files are empty")
		for _, name := range MASDocs() {
			if err := doc(name, func() (any, error) { return nil, nil }); err != nil {
				return err
			}
		}
		return nil
	}
	steps := []struct {
		name  string
		fetch func() (any, error)
	}{
		{"mas_user.json", func() (any, error) { return m.UserRecord(ctx, user.ID) }},
		{"mas_emails.json", func() (any, error) { return m.EmailRecords(ctx, user.ID) }},
		{"mas_upstream_links.json", func() (any, error) {
			ls, err := m.LinkRecords(ctx, user.ID)
			if err != nil {
				return nil, err
			}
			ps, err := m.Providers(ctx)
			out := struct {
				Links     []mas.Record  `json:"links"`
				Providers []masProvider `json:"providers"`
			}{Links: ls, Providers: []masProvider{}}
			for _, p := range ps {
				out.Providers = append(out.Providers, masProvider{ID: p.ID, HumanName: p.HumanName, BrandName: p.BrandName, Issuer: p.Issuer})
			}
			return out, err
		}},
		{"mas_sessions.json", func() (any, error) {
			out := map[string][]mas.Record{}
			for _, kind := range mas.SessionKinds() {
				ss, err := m.SessionRecords(ctx, kind, user.ID)
				if err != nil {
					return nil, fmt.Errorf("list %s: %w", kind, err)
				}
				out[kind] = ss
			}
			return out, nil
		}},
	}
	for _, s := range steps {
		if err := doc(s.name, s.fetch); err != nil {
			return err
		}
	}
	return nil
}
