package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// TestGeneratedTokenResumedIsNotMadeTwice: a generated token is in the
// secrets file before its POST; the row run again (its answer lost, or
// the run killed) finds that token on the server and creates none.
func TestGeneratedTokenResumedIsNotMadeTwice(t *testing.T) {
	var mu sync.Mutex
	tokens := map[string]bool{}
	posts := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v1/registration_tokens/{tok}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !tokens[r.PathValue("tok")] {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errcode":"M_NOT_FOUND"}`))
			return
		}
		w.Write([]byte(`{"token":"` + r.PathValue("tok") + `","uses_allowed":1,"expiry_time":null}`))
	})
	mux.HandleFunc("POST /_synapse/admin/v1/registration_tokens/new", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		posts++
		var body struct {
			Token string `json:"token"`
		}
		if err := decodeJSON(r, &body); err != nil || body.Token == "" {
			t.Errorf("the POST names no token: %v", err)
		}
		tokens[body.Token] = true
		w.Write([]byte(`{}`))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	pf, err := OpenPasswordFile(filepath.Join(t.TempDir(), "secrets.csv"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	j, probs := Parse(row("action", "registration-token", "uses_allowed", "1"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	env := Env{Client: c, Passwords: pf}
	if res, err := j.Run(context.Background(), env, &State{}); err != nil || res.Outcome != journal.Done {
		t.Fatalf("first run: %+v %v", res, err)
	}
	// A new attempt knows nothing but the file: as after kill -9.
	res, err := j.Run(context.Background(), env, &State{Begun: true})
	if err != nil || posts != 1 || len(tokens) != 1 {
		t.Fatalf("second run: %+v %v, %d POSTs, tokens %v", res, err, posts, tokens)
	}
	last, _ := pf.Last(secretLabel(j, env))
	if !tokens[last] {
		t.Fatalf("the file's token %q is not the one made", last)
	}
}

func decodeJSON(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

func TestTokenRowsNameNoUserAndCheckTheToken(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	_, probs := Parse(row("action", "registration-token", "user_id", "@a:hs", "token", "bad token!"), opt)
	if len(probs) != 2 || probs[0].Column == probs[1].Column || strings.Contains(fmt.Sprint(probs), "bad token!") {
		t.Fatalf("problems %v, want one for user_id and one for token", probs)
	}
	j, probs := Parse(row("action", "registration-token", "token", "ok-Token_1.~"), opt)
	// The subject (journal, plan, output) never shows the token itself.
	if len(probs) > 0 || j.Generates() || j.Subject() != "token:(row 7)" {
		t.Fatalf("problems %v, job %+v", probs, j)
	}
	j, _ = Parse(row("action", "registration-token"), opt)
	if !j.Generates() || j.Subject() != "token:(generated)" {
		t.Fatalf("a row without a token: generates %v, subject %q", j.Generates(), j.Subject())
	}
}

// TestLabelledTokenRowsAreEachTheirOwn: twenty contractor rows alike but
// for their label are twenty tokens (not one repeated row), each named by
// its label and never by its value.
func TestLabelledTokenRowsAreEachTheirOwn(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	a, pa := Parse(row("action", "registration-token", "uses_allowed", "1", "label", "ann@example.org"), opt)
	b, pb := Parse(row("action", "registration-token", "uses_allowed", "1", "label", "bob@example.org"), opt)
	if len(pa)+len(pb) > 0 {
		t.Fatal(pa, pb)
	}
	if a.Identity() == b.Identity() || a.Intent() == b.Intent() {
		t.Fatal("two labels are one token")
	}
	if a.Subject() != "token:ann@example.org" || !a.Generates() {
		t.Fatalf("subject %q, generates %v", a.Subject(), a.Generates())
	}
	tf, err := OpenTokenFile(filepath.Join(t.TempDir(), "tokens.csv"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	if got := secretLabel(a, Env{Tokens: tf}); got != "ann@example.org" {
		t.Fatalf("the tokens file names it %q", got)
	}
}
