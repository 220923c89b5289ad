package masstandin

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"
)

// crockford is the ULID alphabet (Crockford's base32: no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulidGen mints ULIDs (https://github.com/ulid/spec) that sort in the order
// they were made, also within one millisecond: MAS pages by id, so a cursor
// must never land between two ids made in the same millisecond in the wrong
// order. Callers hold the server's lock.
type ulidGen struct {
	lastMS   uint64
	lastRand [10]byte
}

func (g *ulidGen) next(now time.Time) string {
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMS {
		// Same (or an earlier, when the injected clock stands still or goes
		// back) millisecond: keep the time and count up the random part.
		ms = g.lastMS
		for i := len(g.lastRand) - 1; i >= 0; i-- {
			g.lastRand[i]++
			if g.lastRand[i] != 0 {
				break
			}
		}
	} else {
		g.lastMS = ms
		if _, err := rand.Read(g.lastRand[:]); err != nil {
			panic(err) // crypto/rand does not fail on the systems we run on
		}
		g.lastRand[0] &= 0x7f // room to count up within the millisecond
	}
	var b [16]byte
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], ms)
	copy(b[:6], t[2:])
	copy(b[6:], g.lastRand[:])
	return encodeULID(b)
}

// encodeULID writes 128 bits as 26 base32 characters, the first carrying 3 bits.
func encodeULID(b [16]byte) string {
	var out [26]byte
	// Work on the number as two 64-bit halves, 5 bits at a time from the end.
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

var errBadULID = errors.New("not a ULID")

// validULID reports whether s has a ULID's shape, as MAS's path and query
// parameters require (anything else is a 400 there).
func validULID(s string) error {
	if len(s) != 26 || s[0] > '7' {
		return errBadULID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return errBadULID
		}
	}
	return nil
}
