package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// ProviderRows is where a manifest's rows name one identity provider in
// the external ids they give users: the first such row, and how many.
type ProviderRows struct {
	First int `json:"first"`
	Rows  int `json:"rows"`
}

// ErrUnknownProvider is a run that names an identity provider the server
// does not list. Synapse stores external ids of any provider id without a
// word, so a mistyped one (keycloak for oidc-keycloak) writes mappings that
// never match a login.
var ErrUnknownProvider = errors.New("unknown identity provider")

// ErrCannotListProviders is a server that does not answer its login flows
// (GET /_matrix/client/v3/login) at all, so the providers cannot be checked.
var ErrCannotListProviders = errors.New("the server does not list its login flows")

// Providers lists the identity providers a run names, each once: in
// --auth-provider, in --match-by external_id:PROVIDER, then in the rows'
// external ids (by name).
func (s Source) Providers(ch *Checked) []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	add(s.Parse.AuthProvider)
	if p, ok := strings.CutPrefix(s.Parse.MatchBy, "external_id:"); ok {
		add(p)
	}
	for _, p := range slices.Sorted(maps.Keys(ch.Providers)) {
		add(p)
	}
	return out
}

// UsesProviders reports whether a run names any identity provider.
func (s Source) UsesProviders(ch *Checked) bool { return len(s.Providers(ch)) > 0 }

// UnknownProviders lists, one line each, where the run names a provider
// that listed (the server's) lacks: the flags first, then the rows.
func (s Source) UnknownProviders(ch *Checked, listed []string) []string {
	var out []string
	if p := s.Parse.AuthProvider; p != "" && !slices.Contains(listed, p) {
		out = append(out, "--auth-provider "+p)
	}
	if p, ok := strings.CutPrefix(s.Parse.MatchBy, "external_id:"); ok && !slices.Contains(listed, p) {
		out = append(out, "--match-by external_id:"+p)
	}
	for _, p := range slices.Sorted(maps.Keys(ch.Providers)) {
		if slices.Contains(listed, p) {
			continue
		}
		u := ch.Providers[p]
		where := fmt.Sprintf("%s:%d:external_ids: %s", s.Label(), u.First, p)
		switch {
		case u.Rows == 2:
			where += " (and 1 more row)"
		case u.Rows > 2:
			where += fmt.Sprintf(" (and %d more rows)", u.Rows-1)
		}
		out = append(out, where)
	}
	return out
}

// CheckProviders reads the identity providers the server lists and returns
// an error wrapping ErrUnknownProvider naming each one the run uses that
// the server lacks, and the ones it lists. The read is retried like any
// other; a server that does not offer it at all gives ErrCannotListProviders.
// A run that names no provider sends nothing.
func CheckProviders(ctx context.Context, client *synapse.Client, src Source, ch *Checked, retry synapse.Retry) error {
	return CheckProvidersIn(ctx, client.SSOProviders, src, ch, retry)
}

// CheckProvidersIn is CheckProviders against the providers list returns:
// on a server whose accounts live in MAS, MAS's upstream providers.
func CheckProvidersIn(ctx context.Context, list func(context.Context) ([]string, error), src Source, ch *Checked, retry synapse.Retry) error {
	if !src.UsesProviders(ch) {
		return nil
	}
	var listed []string
	_, err := retry.Do(ctx, func(ctx context.Context) error {
		var err error
		listed, err = list(ctx)
		return err
	})
	if synapse.IsNotFound(err) || synapse.IsUnrecognized(err) {
		return fmt.Errorf("%w (%v): the identity providers the manifest names cannot be checked", ErrCannotListProviders, err)
	}
	if err != nil {
		return fmt.Errorf("read the server's identity providers: %w", err)
	}
	unknown := src.UnknownProviders(ch, listed)
	if len(unknown) == 0 {
		return nil
	}
	lists := "the server lists no SSO provider (its login flows have no m.login.sso)"
	if len(listed) > 0 {
		lists = "the server lists " + strings.Join(listed, ", ")
	}
	return fmt.Errorf("%w: %s; %s", ErrUnknownProvider, strings.Join(unknown, "; "), lists)
}
