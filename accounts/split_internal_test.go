package accounts

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/payloom/payloom"
)

// Each account of a split comes first for a share of the payments close to
// its weight over the total, and every payment's order holds every account
// once. Account and payment IDs are fixed, so the counts are the same on
// every run; the bound (6.5 standard deviations of a fair draw) only says
// the hash spreads them as weighted.
func TestSplitShares(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		n       int
	}{
		{"70/30", []int{70, 30}, 10000},
		{"10/50/10/30", []int{10, 50, 10, 30}, 4000},
		{"1/10000", []int{1, MaxSplitWeight}, 10000},
	}
	for _, tt := range tests {
		var split []payloom.RoutingSplit
		total := 0
		for i, w := range tt.weights {
			split = append(split, payloom.RoutingSplit{Processor: fmt.Sprintf("pa_%c", 'a'+i), Weight: w})
			total += w
		}
		all := make([]string, len(split))
		for i, e := range split {
			all[i] = e.Processor
		}
		first := map[string]int{}
		for i := range tt.n {
			id := fmt.Sprintf("pay_split%05d", i)
			got := splitOrder(split, id)
			if !slices.Equal(slices.Sorted(slices.Values(got)), all) {
				t.Fatalf("splitOrder(%s, %s) = %v; want each of %v once", tt.name, id, got, all)
			}
			first[got[0]]++
		}
		for _, e := range split {
			p := float64(e.Weight) / float64(total)
			want, sd := p*float64(tt.n), math.Sqrt(float64(tt.n)*p*(1-p))
			if got := float64(first[e.Processor]); math.Abs(got-want) > 6.5*sd+0.5 {
				t.Errorf("splitOrder(%s): %s first for %d of %d payments; want about %.0f", tt.name, e.Processor, first[e.Processor], tt.n, want)
			}
		}
	}
}

// A higher weight gives a lower score (tried earlier) from the same hash,
// and every score is finite and positive.
func TestSplitScore(t *testing.T) {
	for i := range 1000 {
		id := fmt.Sprintf("pay_score%04d", i)
		lo, hi := splitScore(id, "pa_a", 1), splitScore(id, "pa_a", 2)
		if !(hi < lo) || math.IsInf(lo, 0) || math.IsNaN(lo) || !(hi > 0) {
			t.Fatalf("splitScore(%s, pa_a) = %v at weight 1, %v at weight 2; want finite, positive, lower for the higher weight", id, lo, hi)
		}
	}
}
