package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// Kind is what a plan says a row will do.
type Kind string

// Kinds of plan, as `synbatch plan` prints them.
const (
	KindCreate    Kind = "create"
	KindUpdate    Kind = "update"
	KindUnchanged Kind = "unchanged"
	KindSkip      Kind = "skip"
	KindConflict  Kind = "conflict"
	KindError     Kind = "error"
)

// FieldChange is one thing a write changes, for people. A password is
// shown only as "set".
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

func (c FieldChange) String() string {
	if c.Old == "" && c.New == "" {
		return c.Field
	}
	if c.Field == "password" {
		return "password: " + c.New // never a value, only what happens to it
	}
	return fmt.Sprintf("%s: %s → %s", c.Field, orNone(c.Old), orNone(c.New))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Plan is what a row will do to the server, worked out from what the server
// holds now. Only its steps write.
type Plan struct {
	Kind    Kind
	UserID  string
	Changes []FieldChange
	Reason  string // why a row is skipped
	// Notes say what apply leaves as it is or behind, for the admin to
	// decide by: a password kept, an account nobody can log in to.
	Notes []string
	// Erases: the row's write erases an account (deactivate with erase).
	Erases bool
	// RedactRooms, MediaFiles and MappingsRemoved count what else the
	// row's writes take (rooms whose events are redacted, uploads deleted,
	// SSO mappings removed), for the confirmation.
	RedactRooms     int
	MediaFiles      int
	MappingsRemoved int
	steps           []step
}

// step is one write. password marks a write that sets a password: its
// answer lost, it is not sent again (a second one logs the user out again).
type step struct {
	fields   []string
	password bool
	do       func(ctx context.Context) (status int, err error)
}

func (p *Plan) note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

func (p *Plan) add(field string, c FieldChange, do func(ctx context.Context) (int, error)) {
	p.Changes = append(p.Changes, c)
	p.steps = append(p.steps, step{fields: []string{field}, do: do})
}

// Env is what a job needs from the run.
type Env struct {
	Client *synapse.Client
	// MAS, when set, owns the accounts: user rows read and write them
	// there, and profiles, rooms and media through Client.
	MAS          *mas.Client
	OnExists     OnExists
	MatchBy      string
	InactiveDays int
	// ServerName is the homeserver's name: a user matched in MAS is known
	// there by username only.
	ServerName string
	// Passwords keeps generated passwords; nil when no row generates one.
	Passwords *PasswordFile
	// Tokens keeps generated registration tokens beside their labels
	// (--tokens-out); nil puts them in Passwords.
	Tokens *PasswordFile
	// Begin journals that a write for the row is about to be sent. It must
	// return before the write goes out, so a killed run leaves a trace;
	// with durable, the record is fsynced first (destructive writes).
	Begin func(durable bool) error
	// Task journals, durably, the id of a long-running server task a row
	// started, as soon as the server returns it.
	Task func(id string) error
	// TaskTimeout bounds how long a row polls a server task (0: 30 minutes).
	TaskTimeout time.Duration
	// Rooms remembers the rooms this run found joinable; nil checks every row.
	Rooms *RoomChecks
	// CheckNames asks the server, before a row creates an account, whether
	// the name is free (plan). Apply leaves that to the create itself:
	// Synapse runs the same check in it and creates nothing when it fails,
	// and a request per new account is saved (username_available is a scan
	// by lower-cased name, slower than the account's own read).
	CheckNames bool
	// Polled, when set, hears how long the row spent polling a server task
	// (its status requests and the waits between them): that is the task's
	// time, not how quickly the server answers, so apply's adaptive level
	// leaves it out of the row's latency.
	Polled func(time.Duration)
}

// State carries what earlier attempts at the same row learned.
type State struct {
	// Begun: an earlier attempt or an interrupted run sent (or was about to
	// send) a write for this row.
	Begun bool
	// PasswordUnsure: a write holding the password to an account that
	// existed got no answer, so it may have been applied. It is not sent
	// again (a second one would log the user out again) unless Resend.
	PasswordUnsure bool
	// PasswordSet: a login check showed the row's password is in effect.
	PasswordSet bool
	// Resend sends an unsure password again when a login check cannot show
	// it is in effect (--resend-uncertain).
	Resend bool
	// unsureWhy says why an unsure password could not be settled.
	unsureWhy string
	// TaskID is a long-running server task this row started, in this run
	// or an interrupted one: poll it, never start a second.
	TaskID string
	// generated is this row's generated password, kept across attempts so a
	// retry after a refused write sends the one already in the file.
	// generatedFor is the name it is saved under in the file.
	generated, generatedFor string
	// pwMaybeSent: a write of the password went out without a definite
	// answer; pwRefused: the server refused one outright.
	pwMaybeSent, pwRefused bool
	// replanned: a create of this row was refused because its account
	// exists and the row was planned again once for it (raced).
	replanned bool
}

// NotInEffect names the line of the passwords file whose password this
// row generated in this run and that never took effect: no write was
// sent, or the write that carried it was refused and none before it was
// lost. "" otherwise.
func (s *State) NotInEffect() string {
	if s.generatedFor == "" || s.PasswordUnsure || s.pwMaybeSent || s.Begun && !s.pwRefused {
		return ""
	}
	return s.generatedFor
}

// Result is what became of a row. Changed lists the fields written.
type Result struct {
	Outcome journal.Outcome
	UserID  string
	Changed []string
	Note    string
	Status  int
}

// RowError fails one row for a reason that trying again will not fix.
// Conflict marks a guard: the row would take something of another user's.
type RowError struct {
	Msg      string
	Conflict bool
	// cause, when set, is the server's answer the row failed on, kept for
	// the journal's status and errcode.
	cause error
}

func (e *RowError) Error() string { return e.Msg }
func (e *RowError) Unwrap() error { return e.cause }

func rowErr(format string, args ...any) error { return &RowError{Msg: fmt.Sprintf(format, args...)} }

func conflict(format string, args ...any) error {
	return &RowError{Msg: fmt.Sprintf(format, args...), Conflict: true}
}

// IsRowError reports whether err fails only its row, for good.
func IsRowError(err error) bool {
	var r *RowError
	return errors.As(err, &r)
}

// PlanRow is Plan for `synbatch plan`: row-level failures become plans of
// kind conflict or error, and only errors that concern the whole run (the
// server, the token) are returned.
func (j *Job) PlanRow(ctx context.Context, env Env) (*Plan, error) {
	p, err := j.Plan(ctx, env, &State{})
	if err == nil {
		return p, nil
	}
	// A row that fails after its user was found names the user, and the
	// key it was matched by.
	failed := &Plan{UserID: j.Subject()}
	if p != nil {
		// Only how the user was found still holds: notes about what the
		// row would have done (a new account nobody can log in to) do not.
		failed.UserID = p.UserID
		for _, n := range p.Notes {
			if strings.HasPrefix(n, "matched by ") {
				failed.Notes = append(failed.Notes, n)
			}
		}
	}
	var re *RowError
	var se *synapse.Error
	var again *synapse.Again
	switch {
	case errors.As(err, &again):
		return nil, err // planned again by the caller's retry
	case errors.As(err, &re) && re.Conflict:
		failed.Kind, failed.Reason = KindConflict, re.Msg
	case errors.As(err, &re):
		failed.Kind, failed.Reason = KindError, re.Msg
	case errors.As(err, &se) && !synapse.IsAuth(err) && !synapse.IsRetryable(err):
		failed.Kind, failed.Reason = KindError, err.Error()
	default:
		return nil, err
	}
	return failed, nil
}

// Plan reads what the server holds and works out the writes the row needs.
// It sends only GET requests. When the row fails after its user was found,
// the plan so far (its user, its notes) comes with the error, and the error
// says which key a matched user was found by.
func (j *Job) Plan(ctx context.Context, env Env, st *State) (*Plan, error) {
	id, err := j.Resolve(ctx, env)
	if err != nil {
		return nil, err
	}
	p := &Plan{Kind: KindUpdate, UserID: id}
	if j.why != "" {
		p.note("%s", j.why)
	}
	if j.Match != "" {
		by := env.MatchBy
		if prov, ok := strings.CutPrefix(by, "external_id:"); ok {
			by = "external id " + prov + ":"
		} else {
			by += " "
		}
		p.note("matched by %s%s", by, j.Match)
	}
	plan := j.spec.plan
	if env.MAS != nil {
		plan = masPlanFor(j.spec)
	}
	if err := plan(ctx, j, env, st, p); err != nil {
		if j.Match != "" {
			err = fmt.Errorf("%s: %w", p.Notes[0], err)
		}
		return p, err
	}
	if p.Kind == KindUpdate && len(p.steps) == 0 {
		p.Kind = KindUnchanged
	}
	return p, nil
}

// Resolve finds the row's user: its user_id, or the account its email or
// external id belongs to.
func (j *Job) Resolve(ctx context.Context, env Env) (string, error) {
	if j.Match == "" {
		return j.UserID, nil
	}
	if env.MAS != nil {
		return j.resolveMAS(ctx, env)
	}
	c := env.Client
	var id string
	var err error
	switch {
	case env.MatchBy == "email":
		id, err = c.ThreepidOwner(ctx, "email", j.Match)
	case strings.HasPrefix(env.MatchBy, "external_id:"):
		id, err = externalIDOwner(ctx, c, synapse.ExternalID{AuthProvider: strings.TrimPrefix(env.MatchBy, "external_id:"), ExternalID: j.Match})
	default:
		return "", rowErr("the row names its user by %q, but --match-by is %q", j.Match, env.MatchBy)
	}
	if err != nil {
		return "", fmt.Errorf("find the user of %s: %w", j.Match, err)
	}
	if id == "" {
		return "", rowErr("no user has %s %s", strings.TrimPrefix(env.MatchBy, "external_id:"), j.Match)
	}
	return id, nil
}

// Run plans the row and sends the writes it needs. Errors from Synapse are
// returned for the caller to classify (retry, stop, or fail the row).
func (j *Job) Run(ctx context.Context, env Env, st *State) (Result, error) {
	if st.PasswordUnsure {
		if err := j.settlePassword(ctx, env, st); err != nil {
			return Result{UserID: j.Subject()}, err
		}
	}
	p, err := j.Plan(ctx, env, st)
	if err != nil {
		res := Result{UserID: j.Subject()}
		if p != nil {
			res.UserID = p.UserID
		}
		return res, err
	}
	res, err := j.run(ctx, env, st, p)
	if err == nil {
		// The journal keeps what the plan noted, after what the run did.
		res.Note = strings.Join(append(slices.DeleteFunc([]string{res.Note}, func(s string) bool { return s == "" }), p.Notes...), "; ")
	}
	return res, err
}

// run sends the writes of plan p.
func (j *Job) run(ctx context.Context, env Env, st *State, p *Plan) (Result, error) {
	res := Result{UserID: p.UserID}
	if p.Kind == KindSkip {
		res.Outcome, res.Note = journal.Skipped, p.Reason
		return res, nil
	}
	// A create goes to an account that does not exist: it has no sessions
	// to log out, so its password is always sent, and a lost answer is
	// settled by reading the account (it exists: the create, password
	// included, landed; it does not: send it again).
	create := p.Kind == KindCreate
	sent := stepsToSend(p.steps, st, create)
	if len(sent) == 0 {
		return j.settled(st, res), nil
	}
	if err := j.begin(env, st, sent); err != nil {
		return res, err
	}
	res.Status = 200
	for _, s := range sent {
		status, err := s.do(ctx)
		if err != nil {
			st.noteFailedWrite(s, create, err)
			return res, fmt.Errorf("write %s of %s: %w", strings.Join(s.fields, ", "), p.UserID, err)
		}
		res.Changed = append(res.Changed, s.fields...)
		if status == 201 {
			res.Status, res.Note = 201, "created"
		}
	}
	res.Outcome = journal.Done
	switch {
	case st.PasswordUnsure:
		res.Outcome, res.Note = journal.Uncertain, st.UnsureNote()
	case st.PasswordSet:
		res.Note = passwordConfirmed
	}
	return res, nil
}

// stepsToSend leaves out, on an existing account, a password write whose
// earlier answer was lost (State.PasswordUnsure): that row is settled
// without sending it again.
func stepsToSend(steps []step, st *State, create bool) []step {
	var sent []step
	for _, s := range steps {
		if s.password && st.PasswordUnsure && !create {
			continue
		}
		sent = append(sent, s)
	}
	return sent
}

// begin tells the pipeline, once a row, that writes are about to go out;
// durable asks it to journal that first, for a write that cannot be undone
// or repeated blindly (a destructive action, a password).
func (j *Job) begin(env Env, st *State, sent []step) error {
	if env.Begin != nil && !st.Begun {
		durable := j.spec.Destructive
		for _, s := range sent {
			durable = durable || s.password
		}
		if err := env.Begin(durable); err != nil {
			return err
		}
	}
	st.Begun = true
	return nil
}

// noteFailedWrite records what a failed password write leaves unknown: a
// lost answer on an existing account makes the password unsure, a 4xx
// refusal means it was not set, and anything else may have set a generated
// one.
func (st *State) noteFailedWrite(s step, create bool, err error) {
	if !s.password {
		return
	}
	if !create && synapse.Uncertain(err) {
		st.PasswordUnsure = true
	}
	var se *synapse.Error
	refused := errors.As(err, &se) && se.Status >= 400 && se.Status < 500
	st.pwRefused = st.pwRefused || refused
	st.pwMaybeSent = st.pwMaybeSent || !refused && st.generated != ""
}

const passwordConfirmed = "the password write's answer was lost; a login with the new password showed it is set (that session was removed at once)"

// UnsureNote says why a row is uncertain and how to settle it.
func (st *State) UnsureNote() string {
	why := st.unsureWhy
	if why == "" {
		why = "it could not be checked"
	}
	return "the password write's answer was lost and " + why + "; it was not sent again, so nobody is logged out twice. " +
		"Each later run checks it again; --resend-uncertain sends it again"
}

// settled is the result for a row the server already matches.
func (j *Job) settled(st *State, res Result) Result {
	switch {
	case st.PasswordUnsure:
		res.Outcome, res.Note = journal.Uncertain, st.UnsureNote()
	case st.PasswordSet:
		res.Outcome, res.Note = journal.Done, passwordConfirmed
	case st.Begun:
		res.Outcome, res.Note = journal.Done, "already applied by an interrupted attempt"
	default:
		res.Outcome = journal.Unchanged
	}
	return res
}

// passwordFor returns the row's password, generating (and saving) one when
// the row asks for it. The password file is written and synced before the
// write that sets the password goes out. A registration-token row gets
// its generated token from it the same way, under its own label.
func (j *Job) passwordFor(env Env, st *State, userID string) (string, error) {
	if !j.generate {
		return j.password, nil
	}
	if st.generated != "" {
		return st.generated, nil
	}
	if env.Passwords == nil {
		return "", rowErr("a generated password or token needs --passwords-out FILE")
	}
	// A row an interrupted run began sends the password that run saved:
	// its write may still land (a create racing ours), and then the file's
	// last line must be the password in effect, not a new one.
	if st.Begun {
		last, err := env.Passwords.Last(userID)
		if err != nil {
			return "", err
		}
		if last != "" {
			st.generated, st.generatedFor = last, userID
			return last, nil
		}
	}
	pw, err := env.Passwords.Generate(userID)
	if err != nil {
		return "", err
	}
	st.generated, st.generatedFor = pw, userID
	return pw, nil
}

// settlePassword tries to settle an unsure password without writing it: a
// login with it either works (the write landed: PasswordSet) or is refused
// (it is not in effect now). A refused one is sent again only with Resend:
// a write the server is still working on could land later, and the user
// would be logged out twice. Errors worth retrying are returned.
func (j *Job) settlePassword(ctx context.Context, env Env, st *State) error {
	id, err := j.Resolve(ctx, env)
	if err != nil {
		return err
	}
	pw, ok, err := j.knownPassword(env, st, id)
	if err != nil {
		return err
	}
	if !ok {
		st.unsureWhy = "the generated password is not in --passwords-out to check it with"
		if st.Resend {
			st.PasswordUnsure = false
		}
		return nil
	}
	in, err := env.Client.PasswordLogsIn(ctx, id, pw)
	switch {
	case errors.Is(err, synapse.ErrCannotCheck):
		st.unsureWhy = err.Error()
	case err != nil:
		return fmt.Errorf("check the password of %s by logging in: %w", id, err)
	case in:
		st.PasswordUnsure, st.PasswordSet = false, true
		return nil
	default:
		st.unsureWhy = "a login with the new password is refused: the write has not taken effect (yet)"
	}
	if st.Resend {
		st.PasswordUnsure = false
	}
	return nil
}

// knownPassword is the password an unsure write held: the row's own, or the
// one generated for it (this run's, or the last in the passwords file).
func (j *Job) knownPassword(env Env, st *State, id string) (string, bool, error) {
	switch {
	case !j.generate:
		return j.password, true, nil
	case st.generated != "":
		return st.generated, true, nil
	case env.Passwords == nil:
		return "", false, nil
	}
	pw, err := env.Passwords.Last(id)
	if err != nil {
		return "", false, err
	}
	return pw, pw != "", nil
}
