package mas

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The rig's own tests: what MAS (the stand-in) does reaches the real Synapse,
// and the facts of a MAS-mode Synapse 1.160 that synbatch builds on are pinned
// here, so that a Synapse upgrade that changes one of them is seen.

func TestMASUserIsProvisionedInSynapse(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	name := uniq(t)
	u := r.masCreateUser(t, name, map[string]any{"displayname": "Prov " + name})

	su := r.synapseUser(t, r.id(name))
	if su == nil || su["displayname"] != "Prov "+name || su["deactivated"] != false || su["locked"] != false {
		t.Fatalf("Synapse's view of the user MAS made: %v", su)
	}
	// The user list answers with guests=false, and lists the user.
	code, list := r.synapse(t, "GET", "/_synapse/admin/v2/users?guests=false&name="+name, nil)
	if code != 200 || list["total"].(float64) != 1 {
		t.Fatalf("user list with guests=false: HTTP %d %v", code, list)
	}

	// An e-mail added in MAS reaches Synapse's threepids; a lock its lock flag.
	email := name + "@example.org"
	if code, body := r.mas(t, "POST", "/user-emails", map[string]any{"user_id": u.ID, "email": email}); code != 201 {
		t.Fatalf("MAS add e-mail: HTTP %d %v", code, body)
	}
	if got := synapseEmails(r.synapseUser(t, r.id(name))); !slices.Equal(got, []string{email}) {
		t.Fatalf("Synapse's e-mails after MAS added one: %v", got)
	}
	if code, _ := r.mas(t, "POST", "/users/"+u.ID+"/lock", nil); code != 200 {
		t.Fatalf("MAS lock: HTTP %d", code)
	}
	if su := r.synapseUser(t, r.id(name)); su["locked"] != true {
		t.Fatalf("Synapse's lock flag after MAS locked: %v", su["locked"])
	}
	if code, _ := r.mas(t, "POST", "/users/"+u.ID+"/unlock", nil); code != 200 {
		t.Fatalf("MAS unlock: HTTP %d", code)
	}
	if su := r.synapseUser(t, r.id(name)); su["locked"] != false || !slices.Equal(synapseEmails(su), []string{email}) {
		t.Fatalf("Synapse after MAS unlocked: locked %v, e-mails %v", su["locked"], synapseEmails(su))
	}
	// MAS's provisioning overwrites Synapse's e-mail list: one Synapse's
	// Admin API added beside it is gone after MAS provisions again.
	if code, body := r.synapse(t, "PUT", "/_synapse/admin/v2/users/"+url.PathEscape(r.id(name)), map[string]any{
		"threepids": []map[string]any{{"medium": "email", "address": email}, {"medium": "email", "address": "extra-" + email}},
	}); code != 200 {
		t.Fatalf("Synapse PUT threepids: HTTP %d %v", code, body)
	}
	r.mas(t, "POST", "/users/"+u.ID+"/lock", nil)
	if got := synapseEmails(r.synapseUser(t, r.id(name))); !slices.Equal(got, []string{email}) {
		t.Fatalf("Synapse's e-mails after MAS provisioned again: %v, want only MAS's", got)
	}
}

func TestMASDeactivateDeactivatesInSynapseAndErasesUnlessSkipErase(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	erased, kept := uniq(t), uniq(t)
	ue := r.masCreateUser(t, erased, nil)
	uk := r.masCreateUser(t, kept, nil)
	if code, body := r.mas(t, "POST", "/users/"+ue.ID+"/deactivate", nil); code != 200 {
		t.Fatalf("MAS deactivate: HTTP %d %v", code, body)
	}
	if code, body := r.mas(t, "POST", "/users/"+uk.ID+"/deactivate", map[string]any{"skip_erase": true}); code != 200 {
		t.Fatalf("MAS deactivate skip_erase: HTTP %d %v", code, body)
	}
	if su := r.synapseUser(t, r.id(erased)); su["deactivated"] != true || su["erased"] != true {
		t.Fatalf("Synapse after MAS deactivated (erase): deactivated %v erased %v", su["deactivated"], su["erased"])
	}
	if su := r.synapseUser(t, r.id(kept)); su["deactivated"] != true || su["erased"] != false {
		t.Fatalf("Synapse after MAS deactivated (skip_erase): deactivated %v erased %v", su["deactivated"], su["erased"])
	}
	if code, body := r.mas(t, "POST", "/users/"+uk.ID+"/reactivate", nil); code != 200 {
		t.Fatalf("MAS reactivate: HTTP %d %v", code, body)
	}
	if su := r.synapseUser(t, r.id(kept)); su["deactivated"] != false {
		t.Fatalf("Synapse after MAS reactivated: deactivated %v", su["deactivated"])
	}
	if mu := r.masUser(t, kept); mu == nil || mu.Attributes["deactivated_at"] != nil {
		t.Fatalf("MAS after reactivate: %v", mu)
	}
}

func TestMASPasswordLoginGivesADeviceAndTokenInSynapse(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	name := uniq(t)
	u := r.masCreateUser(t, name, nil)
	const pw = "a long enough password"
	if code, body := r.mas(t, "POST", "/users/"+u.ID+"/set-password", map[string]any{"password": pw}); code != 204 {
		t.Fatalf("MAS set-password: HTTP %d %v", code, body)
	}
	if r.masPasswordWorks(t, name, "not the password") {
		t.Fatal("MAS took a wrong password")
	}
	code, login := r.masLogin(t, name, pw)
	if code != 200 {
		t.Fatalf("MAS login: HTTP %d %v", code, login)
	}
	device := login["device_id"].(string)
	// The token works on the real Synapse, as that user and device.
	code, who := r.call(t, "GET", r.server+"/_matrix/client/v3/account/whoami", login["access_token"].(string), nil)
	if code != 200 || who["user_id"] != r.id(name) || who["device_id"] != device {
		t.Fatalf("whoami with MAS's token: HTTP %d %v", code, who)
	}
	devices := func() []string {
		_, d := r.synapse(t, "GET", "/_synapse/admin/v2/users/"+url.PathEscape(r.id(name))+"/devices", nil)
		var ids []string
		for _, x := range d["devices"].([]any) {
			ids = append(ids, x.(map[string]any)["device_id"].(string))
		}
		return ids
	}
	if got := devices(); !slices.Contains(got, device) {
		t.Fatalf("Synapse's devices %v lack %s", got, device)
	}
	// Finishing the session in MAS deletes the device in Synapse.
	sessions := r.masList(t, "/compat-sessions?filter[user]="+u.ID+"&filter[status]=active")
	if len(sessions) != 1 {
		t.Fatalf("MAS compat sessions: %v", sessions)
	}
	if code, body := r.mas(t, "POST", "/compat-sessions/"+sessions[0].ID+"/finish", nil); code != 200 {
		t.Fatalf("MAS finish: HTTP %d %v", code, body)
	}
	if got := devices(); slices.Contains(got, device) {
		t.Fatalf("Synapse still has device %s after MAS finished its session: %v", device, got)
	}
}

func TestSynapseAdminTokenFromMASWorksForRoomsAndNotices(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	name := uniq(t)
	r.masCreateUser(t, name, nil)
	code, room := r.synapse(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "rig " + name, "preset": "private_chat"})
	if code != 200 {
		t.Fatalf("createRoom with the rig's token: HTTP %d %v", code, room)
	}
	roomID := room["room_id"].(string)
	if code, det := r.synapse(t, "GET", "/_synapse/admin/v1/rooms/"+url.PathEscape(roomID), nil); code != 200 || det["name"] != "rig "+name {
		t.Fatalf("admin room details: HTTP %d %v", code, det)
	}
	code, notice := r.synapse(t, "POST", "/_synapse/admin/v1/send_server_notice", map[string]any{
		"user_id": r.id(name), "content": map[string]any{"msgtype": "m.text", "body": "hello " + name},
	})
	if code != 200 || notice["event_id"] == nil {
		t.Fatalf("server notice to a MAS user: HTTP %d %v", code, notice)
	}
	// The notice is in the user's notice room (read back, not trusted from the answer).
	code, notices := r.synapse(t, "GET", "/_synapse/admin/v1/rooms?search_term=Server+Notices&limit=500", nil)
	if code != 200 {
		t.Fatalf("room list: HTTP %d %v", code, notices)
	}
	found := false
	for _, x := range notices["rooms"].([]any) {
		rid := x.(map[string]any)["room_id"].(string)
		_, msgs := r.synapse(t, "GET", "/_synapse/admin/v1/rooms/"+url.PathEscape(rid)+"/messages?dir=b&limit=20", nil)
		for _, ev := range msgs["chunk"].([]any) {
			c, _ := ev.(map[string]any)["content"].(map[string]any)
			if c["body"] == "hello "+name {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("the server notice is in no Server Notices room")
	}
}

func TestAdminRightsOnMASModeSynapseComeFromTheTokensScope(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	admin := r.masUser(t, strings.TrimSuffix(strings.TrimPrefix(r.mustWhoami(t), "@"), ":"+r.serverName))
	if admin == nil {
		t.Fatal("the rig's admin is unknown to MAS")
	}
	session := func(scope string) (string, string) {
		code, body := r.mas(t, "POST", "/personal-sessions", map[string]any{"actor_user_id": admin.ID, "human_name": "rig test", "scope": scope})
		if code != 201 {
			t.Fatalf("MAS personal session: HTTP %d %v", code, body)
		}
		res := resourceOf(body)
		return res.ID, res.Attributes["access_token"].(string)
	}
	adminID, adminTok := session("urn:matrix:client:api:* urn:synapse:admin:*")
	plainID, plainTok := session("urn:matrix:client:api:*")
	defer r.mas(t, "POST", "/personal-sessions/"+adminID+"/revoke", nil)
	defer r.mas(t, "POST", "/personal-sessions/"+plainID+"/revoke", nil)
	if code, _ := r.call(t, "GET", r.server+"/_synapse/admin/v2/users?guests=false&limit=1", adminTok, nil); code != 200 {
		t.Fatalf("token with urn:synapse:admin:*: HTTP %d", code)
	}
	// The same admin account, without the scope: not an admin to Synapse.
	if code, body := r.call(t, "GET", r.server+"/_synapse/admin/v2/users?guests=false&limit=1", plainTok, nil); code != 403 || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("the admin's token without urn:synapse:admin:*: HTTP %d %v, want 403", code, body)
	}
}

func (r *rig) mustWhoami(t *testing.T) string {
	t.Helper()
	code, who := r.synapse(t, "GET", "/_matrix/client/v3/account/whoami", nil)
	if code != 200 {
		t.Fatalf("whoami: HTTP %d %v", code, who)
	}
	return who["user_id"].(string)
}

// TestMASModeSynapseFacts pins what Synapse 1.160 does when it delegates to
// MAS, as issue 21 lists it.
func TestMASModeSynapseFacts(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	adminID := r.mustWhoami(t)
	esc := url.PathEscape
	name := uniq(t)
	r.masCreateUser(t, name, nil)
	gone := []struct{ method, path string }{
		{"GET", "/_synapse/admin/v1/users/" + esc(adminID) + "/admin"},
		{"PUT", "/_synapse/admin/v1/users/" + esc(r.id(name)) + "/admin"},
		{"POST", "/_synapse/admin/v1/users/" + esc(r.id(name)) + "/login"},
		{"POST", "/_synapse/admin/v1/reset_password/" + esc(r.id(name))},
		{"GET", "/_synapse/admin/v1/registration_tokens"},
		{"POST", "/_synapse/admin/v1/registration_tokens/new"},
		{"GET", "/_synapse/admin/v1/register"},
		{"POST", "/_synapse/admin/v1/account_validity/validity"},
		{"GET", "/_matrix/client/v3/login"},
		{"POST", "/_matrix/client/v3/login"},
	}
	for _, g := range gone {
		var body any
		if g.method != "GET" {
			body = map[string]any{}
		}
		code, b := r.synapse(t, g.method, g.path, body)
		if code != 404 || b["errcode"] != "M_UNRECOGNIZED" {
			t.Errorf("%s %s: HTTP %d %v, want 404 M_UNRECOGNIZED", g.method, g.path, code, b)
		}
	}
	if code, b := r.synapse(t, "GET", "/_synapse/admin/v2/users", nil); code != 400 || b["errcode"] != "M_INVALID_PARAM" {
		t.Errorf("user list without guests=false: HTTP %d %v, want 400 M_INVALID_PARAM", code, b)
	}
	if code, _ := r.synapse(t, "GET", "/_synapse/admin/v2/users?guests=false&limit=1", nil); code != 200 {
		t.Errorf("user list with guests=false: HTTP %d, want 200", code)
	}
	// PUT /v2/users still creates an account, one MAS does not know.
	ghost := uniq(t)
	if code, b := r.synapse(t, "PUT", "/_synapse/admin/v2/users/"+esc(r.id(ghost)), map[string]any{"displayname": "ghost"}); code != 201 {
		t.Errorf("PUT /v2/users create: HTTP %d %v, want 201", code, b)
	}
	if r.synapseUser(t, r.id(ghost)) == nil || r.masUser(t, ghost) != nil {
		t.Errorf("the account PUT made should exist in Synapse only")
	}
	// A password for an existing account is refused.
	if code, b := r.synapse(t, "PUT", "/_synapse/admin/v2/users/"+esc(r.id(name)), map[string]any{"password": "a long enough password"}); code != 403 || b["errcode"] != "M_FORBIDDEN" {
		t.Errorf("PUT /v2/users with a password: HTTP %d %v, want 403 M_FORBIDDEN", code, b)
	}
	// Where accounts live: the client API's auth_metadata names the issuer.
	code, meta := r.call(t, "GET", r.server+"/_matrix/client/v1/auth_metadata", "", nil)
	if code != 200 || meta["issuer"] != r.masURL || meta["account_management_uri"] == nil {
		t.Errorf("auth_metadata: HTTP %d %v, want issuer %s", code, meta, r.masURL)
	}
	// The stand-in lists the rig's providers by human name.
	prov := r.masProviders(t)
	if prov["oidc (test)"] == "" || prov["keycloak (test)"] == "" {
		t.Errorf("MAS providers: %v", prov)
	}
}
