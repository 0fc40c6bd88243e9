package payloom

import (
	"slices"
	"strings"
)

// Permission is one thing an API key may do. Every API route requires one.
type Permission string

const (
	PermissionPaymentsRead   Permission = "payments:read"
	PermissionPaymentsWrite  Permission = "payments:write"
	PermissionRefundsWrite   Permission = "refunds:write"
	PermissionCustomersRead  Permission = "customers:read"
	PermissionCustomersWrite Permission = "customers:write"
	PermissionWebhooksRead   Permission = "webhooks:read"
	PermissionWebhooksWrite  Permission = "webhooks:write"
	// Processor accounts and routing rules: where a merchant's payments
	// go. Neither is in the default set, so that keys made before they
	// existed (which hold the default set of their time) and a shop
	// backend's keys never gain the power to redirect payments; the
	// bootstrap key has them (see BootstrapPermissions).
	PermissionProcessorsRead  Permission = "processors:read"
	PermissionProcessorsWrite Permission = "processors:write"
	// PermissionRawCardData lets a key send card numbers in a payment
	// request (PCI DSS scope for the merchant); not in the default set.
	PermissionRawCardData Permission = "raw_card_data"
	// PermissionAuditRead lets a key read the audit log; not in the
	// default set, as the log names keys and addresses.
	PermissionAuditRead Permission = "audit:read"
)

// Permissions lists every permission.
var Permissions = []Permission{
	PermissionPaymentsRead, PermissionPaymentsWrite, PermissionRefundsWrite,
	PermissionCustomersRead, PermissionCustomersWrite,
	PermissionWebhooksRead, PermissionWebhooksWrite,
	PermissionProcessorsRead, PermissionProcessorsWrite,
	PermissionRawCardData, PermissionAuditRead,
}

// DefaultPermissions returns what a key gets unless told otherwise: every
// permission except raw_card_data, audit:read and processors:*.
func DefaultPermissions() []Permission {
	var out []Permission
	for _, p := range Permissions {
		if p != PermissionRawCardData && p != PermissionAuditRead &&
			p != PermissionProcessorsRead && p != PermissionProcessorsWrite {
			out = append(out, p)
		}
	}
	return out
}

// BootstrapPermissions are those of the key made with the first merchant
// (the operator's test-mode key): the default set and processors:*, so
// that a fresh install can configure its processors.
func BootstrapPermissions() []Permission {
	return NormalizePermissions(append(DefaultPermissions(), PermissionProcessorsRead, PermissionProcessorsWrite))
}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return slices.Contains(Permissions, p) }

// ParsePermissions reads a comma-separated list of permissions; "all" is
// every permission and "default" the default set. The result is sorted in
// the order of Permissions, without duplicates. CodeValidation (param
// "permissions") for an unknown name or an empty list.
func ParsePermissions(s string) ([]Permission, error) {
	set := map[Permission]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "":
			continue
		case "all":
			for _, p := range Permissions {
				set[p] = true
			}
		case "default":
			for _, p := range DefaultPermissions() {
				set[p] = true
			}
		default:
			if !Permission(f).Valid() {
				return nil, FieldError("permissions", "unknown permission %q; known: all, default, %s", f, JoinPermissions(Permissions))
			}
			set[Permission(f)] = true
		}
	}
	if len(set) == 0 {
		return nil, FieldError("permissions", "permissions must name at least one permission")
	}
	return NormalizePermissions(keysOf(set)), nil
}

func keysOf(set map[Permission]bool) []Permission {
	out := make([]Permission, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	return out
}

// NormalizePermissions returns ps in the order of Permissions without
// duplicates; unknown names are dropped.
func NormalizePermissions(ps []Permission) []Permission {
	out := []Permission{}
	for _, p := range Permissions {
		if slices.Contains(ps, p) {
			out = append(out, p)
		}
	}
	return out
}

// JoinPermissions renders ps as "a,b,c".
func JoinPermissions(ps []Permission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// Can reports whether the key holds permission p.
func (k *APIKey) Can(p Permission) bool { return slices.Contains(k.Permissions, p) }
