// Package canary is the PAN canary over Payloom's test suite: tests record
// what their servers wrote (logs at debug level, every HTTP response body,
// a dump of every database table) into the directory named by
// PAYLOOM_CANARY_DIR, and after `go test` the scanner
// (internal/canary/scan) reads it, with the test output, and fails the run
// if a card number or a CVC shows up anywhere.
//
// The rule (docs/security.md repeats it):
//
//   - A card number is a run of 13 to 19 digits, written plainly or in
//     groups of 3 to 6 digits separated by single spaces or dashes
//     ("4242 4242 4242 4242", "3782-822463-10005"), bounded by non-digits,
//     that passes the Luhn check and either is a known test card or has a
//     length its brand issues (Visa 13/16/19 from 4, Mastercard 16 from
//     51-55 and 2221-2720, Amex 15 from 34/37, Discover, Diners, JCB,
//     UnionPay, Elo, Hipercard, Maestro as in brandRules). Unix-nano
//     timestamps (19 digits from 1...), amounts, CPF/CNPJ documents and
//     counters fail the brand test; runs inside a hexadecimal word of 32
//     characters or more (hashes) or inside a Payloom ID (prefix_ and 26
//     base32 characters) are not card numbers, nor is the value of a
//     processor's identifier field (transaction_id,
//     network_transaction_id, psp_reference), which processors issue as
//     15- and 16-digit numbers.
//   - A known test card number (the sandbox's and the networks' published
//     test numbers) is a finding wherever its digits appear, even inside a
//     longer run or a word.
//   - A CVC is a finding when 3 or 4 digits follow a CVC-like key (cvc,
//     cvv, cvc2, cvv2, csc, security_code, card_code) and ":" or "=",
//     quoted or not, JSON-escaped or not: `"cvc":"737"`, `cvc=737`.
//
// The package must never print a card number it finds: findings show the
// first six and last four digits only.
package canary

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Finding is one card number or CVC found in a file.
type Finding struct {
	File string
	Line int
	// Kind is "pan" or "cvc".
	Kind string
	// Masked shows the finding safely: first six and last four digits of
	// a card number, or the key of a CVC.
	Masked string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s %s", f.File, f.Line, f.Kind, f.Masked)
}

// KnownTestPANs are card numbers the suite and the card networks use in
// tests. Each is a finding wherever its digits appear.
var KnownTestPANs = []string{
	// The sandbox processor's cards.
	"4242424242424242", "5555555555554444", "4000000000000002", "4000000000009995", "4000000000000127",
	"4000000000000069", "4000000000000119", "4000000000003220", "4100000000000019",
	// Published test numbers of the networks and processors.
	"4111111111111111", "4012888888881881", "4000056655665556", "5105105105105100", "5200828282828210",
	"2223003122003222", "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
	"3056930009020004", "36227206271667", "38520000023237", "3566002020360505", "6200000000000005",
	"5066991111111118", "6062825624254001",
}

// brandRule is a range of prefixes of one brand and the lengths it issues.
type brandRule struct {
	brand   string
	lo, hi  string
	lengths []int
}

func lengths(from, to int) []int {
	var out []int
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// brandRules decide whether a Luhn-valid run "looks like a card": its
// prefix belongs to a network that issues numbers of its length. The
// specific Brazilian ranges come first, as in the vault.
var brandRules = []brandRule{
	{"elo", "401178", "401179", []int{16}}, {"elo", "431274", "431274", []int{16}}, {"elo", "438935", "438935", []int{16}},
	{"elo", "451416", "451416", []int{16}}, {"elo", "457393", "457393", []int{16}}, {"elo", "457631", "457632", []int{16}},
	{"elo", "504175", "504175", []int{16}}, {"elo", "506699", "506778", []int{16}}, {"elo", "509000", "509999", []int{16}},
	{"elo", "627780", "627780", []int{16}}, {"elo", "636297", "636297", []int{16}}, {"elo", "636368", "636368", []int{16}},
	{"elo", "650031", "650978", []int{16}}, {"elo", "651652", "651679", []int{16}}, {"elo", "655000", "655058", []int{16}},
	{"hipercard", "606282", "606282", []int{16, 19}}, {"hipercard", "384100", "384160", []int{16, 19}},
	{"amex", "34", "34", []int{15}}, {"amex", "37", "37", []int{15}},
	{"visa", "4", "4", []int{13, 16, 19}},
	{"mastercard", "51", "55", []int{16}}, {"mastercard", "2221", "2720", []int{16}},
	{"discover", "6011", "6011", lengths(16, 19)}, {"discover", "644", "649", lengths(16, 19)}, {"discover", "65", "65", lengths(16, 19)},
	{"diners", "300", "305", lengths(14, 19)}, {"diners", "3095", "3095", lengths(14, 19)},
	{"diners", "36", "36", lengths(14, 19)}, {"diners", "38", "39", lengths(14, 19)},
	{"jcb", "3528", "3589", lengths(16, 19)},
	{"unionpay", "62", "62", lengths(16, 19)},
	{"maestro", "5018", "5018", lengths(13, 19)}, {"maestro", "5020", "5020", lengths(13, 19)},
	{"maestro", "5038", "5038", lengths(13, 19)}, {"maestro", "5893", "5893", lengths(13, 19)},
	{"maestro", "6304", "6304", lengths(13, 19)}, {"maestro", "6759", "6759", lengths(13, 19)},
	{"maestro", "6761", "6763", lengths(13, 19)},
}

// Brand returns the brand a digit string's prefix and length belong to, or
// "" when no network issues such a number.
func Brand(digits string) string {
	for _, r := range brandRules {
		if len(digits) < len(r.lo) {
			continue
		}
		if p := digits[:len(r.lo)]; p >= r.lo && p <= r.hi {
			for _, n := range r.lengths {
				if n == len(digits) {
					return r.brand
				}
			}
			return ""
		}
	}
	return ""
}

// Luhn reports whether a string of ASCII digits passes the mod 10 check.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// idRE is a Payloom ID: a lower-case prefix, "_", 26 Crockford base32
// characters.
var idRE = regexp.MustCompile(`^[a-z]+_[0-9a-hjkmnp-tv-z]{26}$`)

// inHashOrID reports whether b[i:j] lies inside a word that is a long
// hexadecimal string (a hash) or a Payloom ID: digits there are not a card
// number written by anyone.
func inHashOrID(b []byte, i, j int) bool {
	s, e := i, j
	for s > 0 && isWordByte(b[s-1]) {
		s--
	}
	for e < len(b) && isWordByte(b[e]) {
		e++
	}
	word := b[s:e]
	if len(word) == j-i {
		return false // the digits alone: no surrounding word
	}
	if len(word) >= 32 {
		hex := true
		for _, c := range word {
			if !isHex(c) {
				hex = false
				break
			}
		}
		if hex {
			return true
		}
	}
	return idRE.Match(word)
}

// processorIDKey ends the text before the value of a field that holds an
// identifier a processor issued: Visa's network transaction IDs are 15
// digits, Adyen's PSP references 16, and a random one passes Luhn one time
// in ten.
var processorIDKey = regexp.MustCompile(`(?i)(transaction_id|network_transaction_id|psp_?reference|TransactionID)(\\?["'])?\s*[:=]\s*(\\?["'])?$`)

// processorID reports whether the digits at start are the value of a
// processor identifier field.
func processorID(b []byte, start int) bool {
	from := max(0, start-48)
	return processorIDKey.Match(b[from:start])
}

type group struct{ start, end int }

// pans finds the card numbers in b by the rule in the package comment.
func pans(b []byte) []group {
	var out []group
	for i := 0; i < len(b); {
		if !isDigit(b[i]) || (i > 0 && isDigit(b[i-1])) {
			i++
			continue
		}
		// A sequence of digit groups separated by one space or dash.
		var gs []group
		j := i
		for {
			k := j
			for k < len(b) && isDigit(b[k]) {
				k++
			}
			gs = append(gs, group{j, k})
			if k+1 < len(b) && (b[k] == ' ' || b[k] == '-') && isDigit(b[k+1]) {
				j = k + 1
				continue
			}
			j = k
			break
		}
		for a := 0; a < len(gs); a++ {
			n := 0
			var digits []byte
			for c := a; c < len(gs); c++ {
				g := gs[c]
				if c > a && (g.end-g.start < 3 || g.end-g.start > 6 || gs[a].end-gs[a].start < 3 || gs[a].end-gs[a].start > 6) {
					break // formatted numbers come in groups of 3 to 6
				}
				n += g.end - g.start
				digits = append(digits, b[g.start:g.end]...)
				if n > 19 {
					break
				}
				if n < 13 {
					continue
				}
				d := string(digits)
				if !Luhn(d) || (!isKnown(d) && Brand(d) == "") {
					continue
				}
				if c == a && (inHashOrID(b, g.start, g.end) || processorID(b, gs[a].start)) {
					continue
				}
				out = append(out, group{gs[a].start, g.end})
			}
		}
		i = j
	}
	return out
}

func isKnown(d string) bool {
	for _, p := range KnownTestPANs {
		if d == p {
			return true
		}
	}
	return false
}

// cvcRE finds 3 or 4 digits after a CVC-like key.
var cvcRE = regexp.MustCompile(`(?i)(^|[^a-z0-9])(cvc2?|cvv2?|csc|security_code|card_code)(\\?["'])?\s*[:=]\s*(\\?["'])?([0-9]{3,4})([^0-9]|$)`)

// Mask shows a card number's first six and last four digits.
func Mask(pan string) string {
	var d []byte
	for i := 0; i < len(pan); i++ {
		if isDigit(pan[i]) {
			d = append(d, pan[i])
		}
	}
	if len(d) < 10 {
		return strings.Repeat("*", len(d))
	}
	return string(d[:6]) + strings.Repeat("*", len(d)-10) + string(d[len(d)-4:])
}

// Scan returns the findings in one file's content.
func Scan(name string, b []byte) []Finding {
	var out []Finding
	seen := map[int]bool{} // start offsets already reported
	line := func(off int) int { return bytes.Count(b[:off], []byte("\n")) + 1 }
	for _, g := range pans(b) {
		if !seen[g.start] {
			seen[g.start] = true
			out = append(out, Finding{File: name, Line: line(g.start), Kind: "pan", Masked: Mask(string(b[g.start:g.end]))})
		}
	}
	for _, p := range KnownTestPANs {
		for off := 0; ; {
			i := bytes.Index(b[off:], []byte(p))
			if i < 0 {
				break
			}
			at := off + i
			if !seen[at] {
				seen[at] = true
				out = append(out, Finding{File: name, Line: line(at), Kind: "pan", Masked: Mask(p)})
			}
			off = at + 1
		}
	}
	for _, m := range cvcRE.FindAllSubmatchIndex(b, -1) {
		out = append(out, Finding{File: name, Line: line(m[0]), Kind: "cvc", Masked: string(b[m[4]:m[5]]) + "=***"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// ScanPaths scans files, and every regular file under directories, and
// reports how many files it read.
func ScanPaths(paths ...string) ([]Finding, int, error) {
	var out []Finding
	n := 0
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			n++
			out = append(out, Scan(path, b)...)
			return nil
		})
		if err != nil {
			return nil, n, err
		}
	}
	return out, n, nil
}
