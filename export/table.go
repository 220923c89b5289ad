package export

import (
	"io"

	"github.com/synbatch/synbatch/formats"
)

// tableOut is where a table export (users, rooms, registration tokens)
// writes: the file out, in the format its extension names, or with out
// "-" the format given (csv or jsonl) to stdout.
type tableOut struct {
	out    string
	format string // for "-"
	stdout io.Writer
}

// write writes the header cols, then the rows that rows passes to its
// write func. A file is created as every manifest synbatch writes is
// (formats.Create: 0600, in a temporary file renamed into place when
// closed); it is closed on an error too, and the first error returned.
func (t tableOut) write(cols []string, rows func(write func([]any) error) error) error {
	var w formats.Writer
	var err error
	if t.out == "-" {
		w, err = formats.NewStreamWriter(t.stdout, t.format, cols)
	} else {
		w, err = formats.Create(t.out, cols)
	}
	if err != nil {
		return err
	}
	if err := rows(w.Write); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
