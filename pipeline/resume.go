package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// ErrMeaningChanged is a resume whose options would make a row an earlier
// run finished (or began) mean something else: its key would change, and
// it would be sent again as a new row.
var ErrMeaningChanged = errors.New("the options changed what finished rows mean")

// parseRecord is what a journal header keeps of a run's parse options:
// every field of jobs.ParseOptions but the file's name (a manifest read
// from another path means the same).
func parseRecord(src Source) json.RawMessage {
	opt := src.Parse
	opt.File = ""
	if len(opt.Map) == 0 {
		opt.Map = nil
	}
	if len(opt.Ignore) == 0 {
		opt.Ignore = nil
	}
	b, err := json.Marshal(opt)
	if err != nil {
		return nil
	}
	return b
}

// legacyKeys reports whether some run of the journal keyed its rows the
// way synbatch did before keys took only a row's own options (its header
// has no parse record): such rows are looked up by their legacy key too.
func legacyKeys(st *journal.State) bool {
	return slices.ContainsFunc(st.Runs, func(h journal.Header) bool { return len(h.Parse) == 0 })
}

// checkMeaning refuses a resume whose parse options (flags, environment or
// config file: whatever set them) give a row that an earlier run finished,
// began or left uncertain another key than that run gave it. Such a row
// would be sent again as a new row: a password reset twice, a notice
// delivered twice, a second token generated. Options that change no
// finished row (a default --action when every row names its action, a
// phone region when no finished row has a national number) pass. It reads
// the manifest once with each earlier run's options that differ from
// this run's, and sends nothing.
func checkMeaning(st *journal.State, src Source) error {
	now := parseRecord(src)
	seen := map[string]bool{string(now): true}
	for _, h := range st.Runs {
		if len(h.Parse) == 0 || seen[string(h.Parse)] {
			continue
		}
		seen[string(h.Parse)] = true
		var then jobs.ParseOptions
		if err := json.Unmarshal(h.Parse, &then); err != nil {
			return fmt.Errorf("journal header: parse options: %w", err)
		}
		then.File = src.Parse.File
		if err := compareKeys(st, src, then, h); err != nil {
			return err
		}
	}
	return nil
}

// compareKeys reads the manifest with the options of run h (then) and with
// this run's, row by row, and refuses at the first row h's options keyed
// as finished or begun that this run's options key otherwise.
func compareKeys(st *journal.State, src Source, then jobs.ParseOptions, h journal.Header) error {
	old := src
	old.Parse = then
	ro, err := old.Open()
	if err != nil {
		return err
	}
	defer ro.Close()
	rn, err := src.Open()
	if err != nil {
		return err
	}
	defer rn.Close()
	var rows []int
	for {
		a, errA := ro.Next()
		b, errB := rn.Next()
		if errA == io.EOF || errB == io.EOF {
			break
		}
		if errA != nil {
			return errA
		}
		if errB != nil {
			return errB
		}
		ka, kb := jobs.RowKey(a, then), jobs.RowKey(b, src.Parse)
		if ka == kb || !(st.Final.Has(ka) || st.Begun[ka] || st.Uncertain[ka] || st.Tasks[ka] != "") {
			continue
		}
		if st.Final.Has(kb) {
			continue // the row as it reads now was finished too
		}
		rows = append(rows, b.Num)
	}
	if len(rows) == 0 {
		return nil
	}
	list := make([]string, 0, 5)
	for _, r := range rows[:min(len(rows), 5)] {
		list = append(list, fmt.Sprint(r))
	}
	if len(rows) > 5 {
		list = append(list, fmt.Sprintf("and %d more", len(rows)-5))
	}
	return fmt.Errorf("%w: %s started %s with %s; now %s, which changes what %d rows it finished or began ask for (rows %s): "+
		"they would be sent again as new rows. Nothing was sent: resume with that run's options, or start a new journal (--journal PATH) to apply the rows as they read now",
		ErrMeaningChanged, runOf(h.Manifest), h.Started.Format("2006-01-02 15:04:05Z"), describe(then, src.Parse, true), describe(then, src.Parse, false),
		len(rows), strings.Join(list, ", "))
}

func runOf(manifest string) string {
	if manifest == "" {
		return "the journal's run"
	}
	return "the run of " + manifest
}

// mapping spells a column map as --map takes it: HEADER=column,…
func mapping(m map[string]string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, k+"="+m[k])
	}
	return strings.Join(s, ",")
}

// describe names the options that differ between a and b, with a's values
// (old) or b's.
func describe(a, b jobs.ParseOptions, old bool) string {
	var parts []string
	pick := func(x, y any) any {
		if old {
			return x
		}
		return y
	}
	add := func(name string, x, y any) {
		v := fmt.Sprint(pick(x, y))
		if v == "" {
			v = "(none)"
		}
		parts = append(parts, name+" "+v)
	}
	if a.DefaultAction != b.DefaultAction {
		add("--action", a.DefaultAction, b.DefaultAction)
	}
	if a.ReplaceLists != b.ReplaceLists {
		add("--replace-lists", a.ReplaceLists, b.ReplaceLists)
	}
	if a.MatchBy != b.MatchBy {
		add("--match-by", a.MatchBy, b.MatchBy)
	}
	if a.AuthProvider != b.AuthProvider {
		add("--auth-provider", a.AuthProvider, b.AuthProvider)
	}
	if a.GeneratePasswords != b.GeneratePasswords {
		add("--generate-passwords", a.GeneratePasswords, b.GeneratePasswords)
	}
	if a.PhoneRegion != b.PhoneRegion {
		add("phone region (--phone-region, SYNBATCH_PHONE_REGION, phone_region:)", a.PhoneRegion, b.PhoneRegion)
	}
	if a.ServerName != b.ServerName {
		add("server name", a.ServerName, b.ServerName)
	}
	if !maps.Equal(a.Map, b.Map) {
		add("column map (--map, map:)", mapping(a.Map), mapping(b.Map))
	}
	if !slices.Equal(a.Ignore, b.Ignore) {
		add("--ignore", strings.Join(a.Ignore, ","), strings.Join(b.Ignore, ","))
	}
	if len(parts) == 0 {
		return "the same options"
	}
	return strings.Join(parts, ", ")
}

// TakeIdentities returns the hashes of the identities of the rows this
// run may write: those validation collected, or, when no validation ran
// this time (Revalidated: a journal's record keeps counts, not an id a
// row), those of a read of the manifest. It lets go of validation's ids:
// the lock keeps its own copy, and a long run does not carry 8 bytes a
// row to its end (a second call reads the manifest).
func (c *Checked) TakeIdentities(ctx context.Context, src Source) ([]uint64, error) {
	if c != nil && c.hasIDs {
		ids := c.IDs
		c.IDs, c.hasIDs = nil, false
		return ids, nil
	}
	return Identities(ctx, src)
}

// JobIdentities returns the hashes of the identities of jobs made outside
// the manifest (the accounts --sync closes), for the run lock to hold
// beside the rows'.
func JobIdentities(js []*jobs.Job) []uint64 {
	ids := make([]uint64, 0, len(js))
	for _, j := range js {
		ids = append(ids, hash(j.Identity()))
	}
	return ids
}

// Identities returns a hash of the identity of every row this run may
// write (its shard's, within --rows): the users, rooms and tokens the run
// lock holds. The manifest was validated: a row that does not parse is
// left out.
func Identities(ctx context.Context, src Source) ([]uint64, error) {
	r, err := src.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var ids []uint64
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		row, err := r.Next()
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		if !src.InRows(row.Num) {
			continue
		}
		job, probs := jobs.Parse(row, src.Parse)
		if len(probs) > 0 || !src.Mine(job) {
			continue
		}
		ids = append(ids, hash(job.Identity()))
	}
}
