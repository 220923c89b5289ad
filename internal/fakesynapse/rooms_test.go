package fakesynapse

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

func call(t *testing.T, s *Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequest(method, s.URL+path, &rd)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestRegistrationTokensAnswerAsSynapse: new, get, update, list, delete,
// and Synapse's 404 M_NOT_FOUND for a token it does not hold and 400 for
// one that exists.
func TestRegistrationTokensAnswerAsSynapse(t *testing.T) {
	s := New("hs")
	defer s.Close()
	const base = "/_synapse/admin/v1/registration_tokens"
	if code, out := call(t, s, http.MethodGet, base+"/nope", nil); code != 404 || out["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("unknown token: %d %v", code, out)
	}
	if code, out := call(t, s, http.MethodPost, base+"/new", map[string]any{"token": "abc", "uses_allowed": 2}); code != 200 || out["token"] != "abc" {
		t.Fatalf("new: %d %v", code, out)
	}
	if code, out := call(t, s, http.MethodPost, base+"/new", map[string]any{"token": "abc"}); code != 400 || out["errcode"] != "M_INVALID_PARAM" {
		t.Fatalf("new again: %d %v", code, out)
	}
	if code, out := call(t, s, http.MethodPut, base+"/abc", map[string]any{"uses_allowed": nil}); code != 200 || out["uses_allowed"] != nil {
		t.Fatalf("update: %d %v", code, out)
	}
	if code, out := call(t, s, http.MethodGet, base, nil); code != 200 || len(out["registration_tokens"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if code, _ := call(t, s, http.MethodDelete, base+"/abc", nil); code != 200 || s.RegistrationToken("abc") != nil {
		t.Fatalf("delete: %d, token %+v", code, s.RegistrationToken("abc"))
	}
	if code, out := call(t, s, http.MethodDelete, base+"/abc", nil); code != 404 || out["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("delete again: %d %v", code, out)
	}
}

// TestNoticeTxnDedupedPostNot: a PUT with a transaction id seen before
// answers the first event and sends none; a POST always sends; the
// notice room lists the user as invited and its messages are read back.
func TestNoticeTxnDedupedPostNot(t *testing.T) {
	s := New("hs")
	defer s.Close()
	s.Put(User{Name: "@u:hs"})
	body := map[string]any{"user_id": "@u:hs", "content": map[string]any{"msgtype": "m.text", "body": "hi"}}
	_, a := call(t, s, http.MethodPut, "/_synapse/admin/v1/send_server_notice/t1", body)
	_, b := call(t, s, http.MethodPut, "/_synapse/admin/v1/send_server_notice/t1", body)
	if a["event_id"] == nil || a["event_id"] != b["event_id"] || len(s.Notices("@u:hs")) != 1 {
		t.Fatalf("the same txn twice: %v, %v, notices %v", a, b, s.Notices("@u:hs"))
	}
	call(t, s, http.MethodPost, "/_synapse/admin/v1/send_server_notice", body)
	if n := len(s.Notices("@u:hs")); n != 2 {
		t.Fatalf("after a POST: %d notices, want 2", n)
	}
	if code, out := call(t, s, http.MethodPut, "/_synapse/admin/v1/send_server_notice/t2", map[string]any{"user_id": "@x:hs", "content": map[string]any{}}); code != 404 {
		t.Fatalf("an unknown user: %d %v", code, out)
	}
	_, m := call(t, s, http.MethodGet, "/_synapse/admin/v1/users/@u:hs/memberships", nil)
	ms := m["memberships"].(map[string]any)
	room := s.noticeRoom("@u:hs")
	if ms[room] != "invite" {
		t.Fatalf("memberships %v, want %s invited", ms, room)
	}
	_, page := call(t, s, http.MethodGet, "/_synapse/admin/v1/rooms/"+room+"/messages?dir=b&limit=1", nil)
	if len(page["chunk"].([]any)) != 1 || page["end"] == nil {
		t.Fatalf("messages page %v, want one event and an end", page)
	}
}
