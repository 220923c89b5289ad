package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// ErrAmbiguousProvider is a run that names a MAS provider by a human or
// brand name two providers share. No flag lets it go on: which provider
// was meant cannot be known, and a link to the wrong one never matches a
// login.
var ErrAmbiguousProvider = errors.New("ambiguous identity provider")

// CheckMASProviders is CheckProviders on a server whose accounts live in
// MAS: each provider the run names must pick exactly one of MAS's upstream
// providers (by id, human name or brand name; see jobs.MatchProviders).
// A name that picks none wraps ErrUnknownProvider and names MAS's
// providers; one that picks several wraps ErrAmbiguousProvider and names
// the candidates.
func CheckMASProviders(ctx context.Context, list func(context.Context) ([]mas.Provider, error), src Source, ch *Checked, retry synapse.Retry) error {
	names := src.Providers(ch)
	if len(names) == 0 {
		return nil
	}
	var ps []mas.Provider
	_, err := retry.Do(ctx, func(ctx context.Context) error {
		var err error
		ps, err = list(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read MAS's upstream providers: %w", err)
	}
	var found, ambiguous []string
	for _, n := range names {
		switch m := jobs.MatchProviders(ps, n); len(m) {
		case 0:
		case 1:
			found = append(found, n)
		default:
			found = append(found, n) // not unknown: refused below
			ambiguous = append(ambiguous, fmt.Sprintf("%q names %s", n, jobs.DescribeProviders(m)))
		}
	}
	if len(ambiguous) > 0 {
		return fmt.Errorf("%w: %s; name the provider by its id", ErrAmbiguousProvider, strings.Join(ambiguous, "; "))
	}
	if unknown := src.UnknownProviders(ch, found); len(unknown) > 0 {
		return fmt.Errorf("%w: %s; MAS has %s", ErrUnknownProvider, strings.Join(unknown, "; "), jobs.DescribeProviders(ps))
	}
	return nil
}
