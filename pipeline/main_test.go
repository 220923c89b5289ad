package pipeline

import (
	"os"
	"testing"

	"github.com/synbatch/synbatch/internal/testenv"
)

// TestMain runs the tests with a HOME and config directory of their own
// and without the caller's SYNBATCH_ settings.
func TestMain(m *testing.M) { os.Exit(testenv.Wrap(m).Run()) }
