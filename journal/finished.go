package journal

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"slices"
)

// Finished is the set of rows a journal finished, by key. Keys are the
// hex of 16 bytes, so a million of them fit in 16 MB as a sorted array
// instead of the ~100 MB a map of strings takes; any other key (a
// duplicate row's) goes to a small map.
//
// A resume looks every row of the manifest up, a million of them, so a
// lookup must not be a binary search's twenty cache misses: keys are
// hashes, spread evenly, and an index by their leading bits (about one key
// per slot, 4 bytes a key) finds a key's few neighbours in one step.
type Finished struct {
	keys   []key // sorted after load; appended during it
	sorted bool
	index  []uint32 // index[p]: the first key whose leading bits are p or more
	shift  uint     // 64 - the index's bits
	other  map[string]bool
}

// key is a row key's 16 bytes as two big-endian words: compared as
// numbers, they sort as the bytes do.
type key struct{ hi, lo uint64 }

func parseKey(s string) (key, bool) {
	var b [16]byte
	if len(s) != 32 {
		return key{}, false
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return key{}, false
	}
	return key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

func (f *Finished) add(s string) {
	if k, ok := parseKey(s); ok {
		f.keys = append(f.keys, k)
		f.sorted = false
		return
	}
	if f.other == nil {
		f.other = map[string]bool{}
	}
	f.other[s] = true
}

func (f *Finished) seal() {
	if f.sorted {
		return
	}
	slices.SortFunc(f.keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo)) })
	f.keys = slices.Compact(f.keys)
	n := min(max(bits.Len(uint(len(f.keys))), 1), 24)
	f.shift = uint(64 - n)
	f.index = slices.Grow(f.index[:0], 1<<n+1)[:1<<n+1]
	i := 0
	for p := range f.index {
		for i < len(f.keys) && f.keys[i].hi>>f.shift < uint64(p) {
			i++
		}
		f.index[p] = uint32(i)
	}
	f.sorted = true
}

// Has reports whether the row with this key is finished.
func (f *Finished) Has(s string) bool {
	if f.other[s] {
		return true
	}
	k, ok := parseKey(s)
	if !ok {
		return false
	}
	f.seal()
	p := k.hi >> f.shift
	return slices.Contains(f.keys[f.index[p]:f.index[p+1]], k)
}

// Len is how many rows are finished.
func (f *Finished) Len() int {
	f.seal()
	return len(f.keys) + len(f.other)
}
