package synapse

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRegistrationTokenNeverInErrorsOrDebugLog: a registration token in a
// request path is sent, but the error (which the journal keeps) and the -vv
// log show the path without it, and Synapse's message that repeats it
// ("No such registration token: …") is redacted too.
func TestRegistrationTokenNeverInErrorsOrDebugLog(t *testing.T) {
	const token = "s3cret-Token_x"
	var got string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"No such registration token: ` + token + `"}`))
	}))
	defer hs.Close()
	var log bytes.Buffer
	c, err := New(Config{Server: hs.URL, Token: "t", Debug: &log, DebugLevel: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRegistrationToken(context.Background(), token)
	if !IsNotFound(err) || got != "/_synapse/admin/v1/registration_tokens/"+token {
		t.Fatalf("err %v, path sent %q", err, got)
	}
	err2 := c.UpdateRegistrationToken(context.Background(), token, nil, nil)
	for what, s := range map[string]string{"get error": err.Error(), "put error": err2.Error(), "debug log": log.String()} {
		if strings.Contains(s, token) {
			t.Errorf("the %s holds the token: %s", what, s)
		}
		if !strings.Contains(s, "registration_tokens/[redacted]") {
			t.Errorf("the %s does not show the redacted path: %s", what, s)
		}
	}
}
