package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

// TestKeyPermissionsAndAuditList: keys get the default permissions unless
// --permissions says otherwise, and every key created or revoked from the
// command line shows in `payloom audit list` as done by "cli" from "cli".
func TestKeyPermissionsAndAuditList(t *testing.T) {
	env := map[string]string{"PAYLOOM_DATA": t.TempDir()}
	out, _ := mustRun(t, env, "merchants", "create", "--name", "Shop")
	mid := strings.TrimSpace(out)
	other, _ := mustRun(t, env, "merchants", "create", "--name", "Other")
	other = strings.TrimSpace(other)

	keyID := regexp.MustCompile(`key_[0-9a-z]{26}`)
	tests := []struct {
		flags []string
		want  string
	}{
		{nil, payloom.JoinPermissions(payloom.DefaultPermissions())},
		{[]string{"--permissions", "all"}, payloom.JoinPermissions(payloom.Permissions)},
		{[]string{"--permissions", "raw_card_data,payments:write"}, "payments:write,raw_card_data"},
		{[]string{"--permissions", "default,audit:read"}, payloom.JoinPermissions(payloom.DefaultPermissions()) + ",audit:read"},
	}
	var ids []string
	for _, tt := range tests {
		args := append([]string{"keys", "create", "--merchant", mid, "--mode", "test"}, tt.flags...)
		_, errOut := mustRun(t, env, args...)
		if !strings.Contains(errOut, "with permissions "+tt.want+".") {
			t.Errorf("payloom %v stderr = %q; want permissions %s", args, errOut, tt.want)
		}
		ids = append(ids, keyID.FindString(errOut))
	}
	for _, bad := range []string{"payments:delete", "", "ALL"} {
		out, _, err := run(t, env, "keys", "create", "--merchant", mid, "--mode", "test", "--permissions", bad)
		if err == nil || !strings.Contains(err.Error(), "--permissions") || out != "" {
			t.Errorf("keys create --permissions %q = %q, %v; want an error naming --permissions", bad, out, err)
		}
	}
	mustRun(t, env, "keys", "revoke", ids[0])
	mustRun(t, env, "keys", "create", "--merchant", other, "--mode", "live")

	list := func(args ...string) []payloom.AuditEvent {
		t.Helper()
		out, _ := mustRun(t, env, append([]string{"audit", "list"}, args...)...)
		var evs []payloom.AuditEvent
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var ev payloom.AuditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("audit list line %q is not JSON: %v", line, err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	all := list()
	if len(all) != 6 {
		t.Fatalf("audit list = %d events; want 6 (5 keys created, 1 revoked)", len(all))
	}
	if ev := all[1]; ev.Action != payloom.AuditAPIKeyRevoked || ev.TargetID != ids[0] || ev.Actor != "cli" || ev.Source != "cli" ||
		ev.MerchantID != mid || ev.Outcome != payloom.AuditSuccess {
		t.Errorf("revocation event = %+v; want api_key.revoked of %s by cli", ev, ids[0])
	}
	if ev := all[0]; ev.MerchantID != other || !ev.Livemode || ev.Action != payloom.AuditAPIKeyCreated {
		t.Errorf("newest event = %+v; want the live key of %s", ev, other)
	}
	if got := list("--merchant", mid); len(got) != 5 {
		t.Errorf("audit list --merchant = %d events; want 5", len(got))
	}
	if got := list("--merchant", "none"); len(got) != 0 {
		t.Errorf("audit list --merchant none = %v; want no event", got)
	}
	if got := list("--limit", "2"); len(got) != 2 || got[0].ID != all[0].ID {
		t.Errorf("audit list --limit 2 = %d events; want the newest 2", len(got))
	}
	// Pages follow the cursor: small pages list the same events.
	auditPageSize = 4
	t.Cleanup(func() { auditPageSize = 100 })
	for _, limit := range []string{"5", "6", "100"} {
		got := list("--limit", limit)
		want := all[:min(len(all), atoi(limit))]
		if len(got) != len(want) {
			t.Fatalf("audit list --limit %s in pages of 4 = %d events; want %d", limit, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Errorf("audit list --limit %s in pages of 4: event %d = %s; want %s", limit, i, got[i].ID, want[i].ID)
			}
		}
	}
	if got := list("--action", "api_key.revoked"); len(got) != 1 {
		t.Errorf("audit list --action api_key.revoked = %d events; want 1", len(got))
	}
	for _, bad := range [][]string{{"--limit", "0"}, {"--merchant", "shop"}} {
		if _, _, err := run(t, env, append([]string{"audit", "list"}, bad...)...); err == nil {
			t.Errorf("audit list %v = nil; want an error", bad)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
