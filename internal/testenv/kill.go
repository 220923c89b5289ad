package testenv

import (
	"bytes"
	"fmt"
	"os/exec"
	"time"
)

// KillWhen starts cmd (its stderr is kept for the error), waits until
// ready is closed (a proxy holding the write the test kills the run at),
// then kills it (SIGKILL where there are signals) and waits for it to end.
// It fails if cmd ends first, or after within, a hang guard.
func KillWhen(cmd *exec.Cmd, ready <-chan struct{}, within time.Duration) error {
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-ready:
	case <-exited:
		return fmt.Errorf("the run ended before the moment it was to be killed at:\n%s", errb.String())
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("the moment to kill the run at did not come in %v:\n%s", within, errb.String())
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil
}
