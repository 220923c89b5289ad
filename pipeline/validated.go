package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// validated is what a run keeps of its validation in its journal header,
// so that resuming a byte-identical manifest with the same options does not
// read and check a million rows again before the first new one.
type validated struct {
	Fingerprint string              `json:"fingerprint"`
	Rows        int                 `json:"rows"`
	AllRows     int                 `json:"all_rows"`
	Actions     map[jobs.Action]int `json:"actions"`
	Generate    int                 `json:"generate"`
	Tokens      int                 `json:"tokens,omitempty"` // of Generate, registration tokens
	DupOf       map[int]int         `json:"dup_of,omitempty"`
	// Providers is absent from records made before it: such a record is
	// not reused, so a resumed run still checks the providers.
	Providers map[string]ProviderRows `json:"providers"`
}

// maxKeptDups bounds what a header carries; past it, a resume validates again.
const maxKeptDups = 10_000

// Fingerprint identifies a manifest's bytes with everything that gives its
// rows their meaning.
func Fingerprint(src Source, manifestSHA256 string) string {
	// No --map or --ignore means the same whether the command line made
	// an empty map or none: otherwise the two encode as {} and null, and a
	// journal written one way is validated again, a million rows, by a
	// resume made the other way.
	parse := src.Parse
	if len(parse.Map) == 0 {
		parse.Map = nil
	}
	if len(parse.Ignore) == 0 {
		parse.Ignore = nil
	}
	b, _ := json.Marshal(struct {
		SHA           string
		Parse         jobs.ParseOptions
		Sheet         string
		Shard, Shards int
	}{manifestSHA256, parse, src.Sheet, src.Shard, src.Shards})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Record returns what a journal header keeps of a passed validation, or
// nil when it is too large to keep.
func (c *Checked) Record(fingerprint string) json.RawMessage {
	if c.Total > 0 || len(c.DupOf) > maxKeptDups {
		return nil
	}
	providers := c.Providers
	if providers == nil {
		providers = map[string]ProviderRows{} // recorded as {}: checked, none named
	}
	b, err := json.Marshal(validated{Fingerprint: fingerprint, Rows: c.Rows, AllRows: c.AllRows, Actions: c.Actions,
		Generate: c.Generate, Tokens: c.Tokens, DupOf: c.DupOf, Providers: providers})
	if err != nil {
		return nil
	}
	return b
}

// Revalidated returns the validation an earlier run of the same journal
// recorded for the same fingerprint, or nil when the manifest must be
// validated again.
func Revalidated(st *journal.State, fingerprint string) (*Checked, error) {
	if len(st.Runs) == 0 {
		return nil, nil
	}
	last := st.Runs[len(st.Runs)-1]
	if len(last.Validated) == 0 {
		return nil, nil
	}
	var v validated
	if err := json.Unmarshal(last.Validated, &v); err != nil {
		return nil, fmt.Errorf("journal header: %w", err)
	}
	if v.Fingerprint != fingerprint || v.Providers == nil {
		return nil, nil
	}
	if v.DupOf == nil {
		v.DupOf = map[int]int{}
	}
	if v.Actions == nil {
		v.Actions = map[jobs.Action]int{}
	}
	return &Checked{Rows: v.Rows, AllRows: v.AllRows, Actions: v.Actions, Generate: v.Generate, Tokens: v.Tokens, DupOf: v.DupOf, Providers: v.Providers}, nil
}
