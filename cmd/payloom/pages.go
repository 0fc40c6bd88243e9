package main

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// routes puts the shopper-facing pages next to the API on one handler: the
// hosted payment page, receipts and their assets, and the sandbox's 3-D
// Secure challenge; everything else is the API's.
func routes(apiHandler, pages, challenge http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/pay/", pages)
	mux.Handle("/receipts/", pages)
	mux.Handle("/assets/", pages)
	mux.Handle("/sandbox/", challenge)
	mux.Handle("/", apiHandler)
	return mux
}

// checkPublicURL accepts "" (the default) or an absolute http(s) URL with a
// host and nothing after it: the pages' paths are absolute, so the server
// must be at the root of the URL.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("--public-url (PAYLOOM_PUBLIC_URL) must be an http or https URL with a host and no path, such as https://pay.example.com")
	}
	return nil
}

// defaultPublicURL is http:// and the listening address, with localhost
// for an address that listens on every interface.
func defaultPublicURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
