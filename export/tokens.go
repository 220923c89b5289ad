package export

import (
	"context"
	"fmt"
	"io"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// tokenColumns are the columns of `export registration-tokens`: a manifest
// of registration-token rows that apply takes back (pending and completed
// are read-only columns it ignores).
var tokenColumns = []string{"action", "token", "uses_allowed", "expiry_time", "pending", "completed"}

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
	var toks []synapse.RegistrationToken
	err := listRetry(ctx, func() error {
		var err error
		if cfg.MAS != nil {
			toks, err = masRegistrationTokens(ctx, cfg.MAS)
		} else {
			toks, err = c.RegistrationTokens(ctx)
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
	n := 0
	err = tableOut{cfg.Out, cfg.Format, cfg.Stdout}.write(tokenColumns, func(write func([]any) error) error {
		for _, t := range toks {
			if err := write([]any{"registration-token", t.Token, orNil(t.UsesAllowed), orNil(t.ExpiryTime), t.Pending, t.Completed}); err != nil {
				return err
			}
		}
		n = len(toks)
		return nil
	})
	return n, err
}
