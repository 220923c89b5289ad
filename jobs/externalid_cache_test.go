package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/synbatch/synbatch/synapse"
)

// TestStaleExternalIDLookupIsNoConflict: Synapse's external id lookup
// still names @old after its mappings were cleared (its cache is not
// invalidated for removed ids); @old's own record no longer holds the id,
// so mapping it to a new account plans a create, not a conflict. While
// @old's record still holds it, it is a conflict.
func TestStaleExternalIDLookupIsNoConflict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		oldIDs string
		want   Kind
	}{
		{"cleared", `[]`, KindCreate},
		{"still held", `[{"auth_provider":"oidc","external_id":"sub1"}]`, KindConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /_synapse/admin/v1/auth_providers/oidc/users/sub1", func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"user_id":"@old:hs"}`))
			})
			mux.HandleFunc("GET /_synapse/admin/v2/users/{id}", func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("id") != "@old:hs" {
					http.Error(w, `{"errcode":"M_NOT_FOUND","error":"User not found"}`, http.StatusNotFound)
					return
				}
				w.Write([]byte(`{"name":"@old:hs","deactivated":true,"erased":true,"external_ids":` + tc.oldIDs + `}`))
			})
			hs := httptest.NewServer(mux)
			defer hs.Close()
			c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
			j, probs := Parse(row("action", "upsert", "user_id", "@new:hs", "external_ids", "oidc:sub1"), ParseOptions{File: "m.csv", ServerName: "hs"})
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			p, err := j.PlanRow(context.Background(), Env{Client: c})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.want {
				t.Fatalf("plan %+v, want %s", p, tc.want)
			}
		})
	}
}
