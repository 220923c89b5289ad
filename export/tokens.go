package export

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// tokenColumns are the columns of `export registration-tokens`: a manifest
// of registration-token rows that apply takes back (pending and completed
// are read-only columns it ignores). masTokenColumns add revoked, which
// only MAS can set: a plain Synapse's export leaves it out rather than
// write false, so that applying an old Synapse export to a server that
// moved to MAS never brings back a token MAS revoked since.
var (
	tokenColumns    = []string{"action", "token", "uses_allowed", "expiry_time", "pending", "completed"}
	masTokenColumns = []string{"action", "token", "uses_allowed", "expiry_time", "revoked", "pending", "completed"}
)

// exportedToken is one row of the export: Synapse's fields for a token,
// and on MAS whether it is revoked.
type exportedToken struct {
	synapse.RegistrationToken
	revoked bool
}

// TokensConfig is one `export registration-tokens` run.
type TokensConfig struct {
	Out    string // .csv, .tsv, .xlsx, .ods or .jsonl; "-" writes Format to Stdout
	Format string // csv or jsonl, for "-"
	Stdout io.Writer
	// MAS, when set, holds the tokens (a server whose accounts live in MAS).
	MAS *mas.Client
}

// RegistrationTokens writes every registration token, valid or not, and
// returns how many. Synapse lists them in one unpaged answer.
func RegistrationTokens(ctx context.Context, c *synapse.Client, cfg TokensConfig) (int, error) {
	var toks []exportedToken
	err := listRetry(ctx, func() error {
		if cfg.MAS != nil {
			var err error
			toks, err = masRegistrationTokens(ctx, cfg.MAS)
			return err
		}
		ts, err := c.RegistrationTokens(ctx)
		toks = make([]exportedToken, len(ts))
		for i, t := range ts {
			toks[i] = exportedToken{RegistrationToken: t}
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list registration tokens: %w", err)
	}
	orNil := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	cols := tokenColumns
	if cfg.MAS != nil {
		cols = masTokenColumns
	}
	n := 0
	err = tableOut{cfg.Out, cfg.Format, cfg.Stdout}.write(cols, func(write func([]any) error) error {
		for _, t := range toks {
			row := []any{"registration-token", t.Token, orNil(t.UsesAllowed), orNil(t.ExpiryTime), t.Pending, t.Completed}
			if cfg.MAS != nil {
				row = slices.Insert(row, 4, any(t.revoked))
			}
			if err := write(row); err != nil {
				return err
			}
		}
		n = len(toks)
		return nil
	})
	return n, err
}
