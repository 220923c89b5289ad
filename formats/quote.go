package formats

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxCell is the most text one cell (or JSONL value) may hold. The longest
// value a manifest needs is a list of rooms or a message of some kilobytes;
// a megabyte is a mistake or an attack, and refusing it keeps every message
// and every row small.
const MaxCell = 1 << 20

// maxQuoted is how many characters of a value a message quotes.
const maxQuoted = 64

// Clip shortens v for a message: at most maxQuoted characters, then
// "…(N bytes)" giving the length of the whole value.
func Clip(v string) string {
	head, tail := clipParts(v)
	return head + tail
}

// clipParts splits what Clip shows of v into the kept text and the
// "…(N bytes)" that replaces the rest ("" when nothing is cut).
func clipParts(v string) (head, tail string) {
	n, cut := 0, 0
	for cut < len(v) && n < maxQuoted {
		_, size := utf8.DecodeRuneInString(v[cut:])
		cut += size
		n++
	}
	if cut == len(v) {
		return v, ""
	}
	return v[:cut], fmt.Sprintf("…(%d bytes)", len(v))
}

// Quote quotes a cell value for a problem message as %q does, shortened to
// its first 64 characters and its length: a message names the value, it
// does not repeat a megabyte of it.
func Quote(v string) string {
	head, tail := clipParts(v)
	return strconv.Quote(head) + tail
}

// controlName names the control characters people meet by accident.
func controlName(c rune) string {
	switch c {
	case 0:
		return " (NUL)"
	case 0x1B:
		return " (ESC)"
	case 0x7F:
		return " (DEL)"
	}
	return ""
}

// checkText says what is wrong with a cell's text, or "": longer than
// MaxCell, or holding a C0 control character or DEL. Tab, line feed and
// carriage return are allowed: a display name may hold them (Synapse keeps
// them, and an export must read back as it was written) and the other
// columns' own checks refuse them where they cannot be.
func checkText(v string) string {
	if len(v) > MaxCell {
		return fmt.Sprintf("the cell holds %d bytes, more than the %s a cell may hold", len(v), byteSize(MaxCell))
	}
	pos := 0
	for _, c := range v {
		pos++
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F {
			return fmt.Sprintf("control character U+%04X%s at character %d: remove it", c, controlName(c), pos)
		}
	}
	return ""
}
