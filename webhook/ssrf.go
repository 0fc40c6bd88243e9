package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/payloom/payloom"
)

// maxURLLength bounds an endpoint URL.
const maxURLLength = 2048

// resolveTimeout bounds the DNS lookup of ValidateURL.
const resolveTimeout = 5 * time.Second

// ErrForbiddenAddress is the error of a delivery whose connection would go
// to an address live-mode endpoints may not reach.
var ErrForbiddenAddress = errors.New("webhook: destination address not allowed")

// forbiddenPrefixes are ranges that are not public unicast, beyond what
// netip's predicates cover.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and the broadcast address
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("2001::/32"),      // Teredo: an obfuscated IPv4 inside
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // the IPv4 address is the last 4 bytes
	sixTo4 = netip.MustParsePrefix("2002::/16")    // the IPv4 address is bytes 2 to 5
)

// IsForbidden reports whether live-mode webhooks must not connect to ip:
// loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, with the
// cloud metadata address, fe80::/10), unspecified, carrier-grade NAT
// (100.64/10), multicast, reserved ranges, and IPv6 forms that embed such an
// IPv4 address (mapped, NAT64, 6to4).
func IsForbidden(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return true
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return IsForbidden(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return IsForbidden(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// guardControl is a net.Dialer Control hook: it runs after DNS resolution,
// for each address actually dialed, so a name that resolved to a public
// address when the endpoint was created and to a private one now (DNS
// rebinding) is refused.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenAddress, address)
	}
	if IsForbidden(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr().Unmap())
	}
	return nil
}

// ValidateURL checks an endpoint URL with the default policy: in live
// mode it must be https and its host must resolve only to public
// addresses; in test mode http and any address are allowed. Errors are
// CodeValidation with param "url".
func ValidateURL(ctx context.Context, rawURL string, livemode bool) error {
	var o Options
	o.defaults()
	return o.validateURL(ctx, rawURL, livemode)
}

func urlError(format string, args ...any) error {
	return payloom.FieldError("url", format, args...)
}

func (o *Options) validateURL(ctx context.Context, rawURL string, livemode bool) error {
	if rawURL == "" {
		return urlError("url is required")
	}
	if len(rawURL) > maxURLLength {
		return urlError("url must be at most %d characters", maxURLLength)
	}
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return urlError("url must be an absolute http or https URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.AllowHTTP(livemode) {
			return urlError("url must use https in live mode")
		}
	default:
		return urlError("url must be an absolute http or https URL")
	}
	if u.User != nil {
		// Credentials would be stored and shown with the URL; receivers
		// authenticate deliveries by their signature instead.
		return urlError("url must not contain a user name or password")
	}
	if u.Fragment != "" {
		return urlError("url must not contain a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return urlError("url must name a host")
	}
	if o.AllowPrivate(livemode) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if IsForbidden(ip) {
			return urlError("url must not point at a loopback, private, link-local or otherwise internal address in live mode")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := o.Resolver.LookupNetIP(ctx, "ip", strings.TrimSuffix(host, "."))
	if err != nil || len(ips) == 0 {
		return urlError("url's host %q does not resolve", host)
	}
	for _, ip := range ips {
		if IsForbidden(ip) {
			return urlError("url's host %q resolves to a loopback, private, link-local or otherwise internal address, which live mode does not allow", host)
		}
	}
	return nil
}

// newDialer returns the dialer of deliveries: guarded unless private
// addresses are allowed.
func newDialer(guard bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if guard {
		d.Control = guardControl
	}
	return d
}
