package journal

import (
	"bytes"
	"encoding/hex"
	"slices"
)

// Finished is the set of rows a journal finished, by key. Keys are the
// hex of 16 bytes, so a million of them fit in 16 MB as a sorted array
// instead of the ~100 MB a map of strings takes; any other key (a
// duplicate row's) goes to a small map.
type Finished struct {
	keys   [][16]byte // sorted after load; appended during it
	sorted bool
	other  map[string]bool
}

func (f *Finished) add(key string) {
	var k [16]byte
	if len(key) == 32 {
		if _, err := hex.Decode(k[:], []byte(key)); err == nil {
			f.keys = append(f.keys, k)
			f.sorted = false
			return
		}
	}
	if f.other == nil {
		f.other = map[string]bool{}
	}
	f.other[key] = true
}

func (f *Finished) seal() {
	if f.sorted {
		return
	}
	slices.SortFunc(f.keys, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	f.keys = slices.Compact(f.keys)
	f.sorted = true
}

// Has reports whether the row with this key is finished.
func (f *Finished) Has(key string) bool {
	if f.other[key] {
		return true
	}
	var k [16]byte
	if len(key) != 32 {
		return false
	}
	if _, err := hex.Decode(k[:], []byte(key)); err != nil {
		return false
	}
	f.seal()
	_, found := slices.BinarySearchFunc(f.keys, k, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	return found
}

// Len is how many rows are finished.
func (f *Finished) Len() int {
	f.seal()
	return len(f.keys) + len(f.other)
}
