package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

func TestFinishedFindsEveryKeyItHoldsAndNoOther(t *testing.T) {
	keyOf := func(i int) string {
		sum := sha256.Sum256(fmt.Appendf(nil, "row %d", i))
		return hex.EncodeToString(sum[:16])
	}
	for _, n := range []int{0, 1, 2, 3, 1000, 70_000} {
		f := &Finished{}
		for i := range n {
			f.add(keyOf(2 * i)) // the even rows are finished
		}
		if n > 0 {
			f.add(keyOf(0)) // a row finished twice counts once
		}
		// A key that shares its first 8 bytes with a held one is another row.
		near := []byte(keyOf(0))
		near[31] ^= 1
		f.add("short-key")
		if f.Len() != n+1 {
			t.Fatalf("%d rows: Len %d, want %d", n, f.Len(), n+1)
		}
		for i := range 2 * n {
			if got, want := f.Has(keyOf(i)), i%2 == 0; got != want {
				t.Fatalf("%d rows: Has(row %d) = %v, want %v", n, i, got, want)
			}
		}
		if f.Has(string(near)) || !f.Has("short-key") || f.Has("other") {
			t.Fatalf("%d rows: a key differing in its last bit, or the short keys, answered wrong", n)
		}
	}
}
