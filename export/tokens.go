package export

import (
	"context"
	"fmt"
	"io"

	"github.com/synbatch/synbatch/formats"
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
	var w formats.Writer
	if cfg.Out == "-" {
		w, err = formats.NewStreamWriter(cfg.Stdout, cfg.Format, tokenColumns)
	} else {
		w, err = formats.Create(cfg.Out, tokenColumns)
	}
	if err != nil {
		return 0, err
	}
	orNil := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, t := range toks {
		if err := w.Write([]any{"registration-token", t.Token, orNil(t.UsesAllowed), orNil(t.ExpiryTime), t.Pending, t.Completed}); err != nil {
			w.Close()
			return 0, err
		}
	}
	return len(toks), w.Close()
}
